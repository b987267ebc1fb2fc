//! The fake kubelet's termination messages (see [`TerminationLog`]).

use serde_json::Value;

use super::LogBuffer;

/// The kubelet's termination message: the file at the container's
/// `terminationMessagePath` is a per-pod temporary file here (env values naming the path
/// are rewritten to it, as claims' mount paths are), read on exit as the kubelet reads
/// it: at most the last 4096 bytes (`MaxContainerTerminationMessageLength`). With
/// `FallbackToLogsOnError`, an empty file of a failed container gives the log's last 80
/// lines, at most 2048 bytes.
pub(super) struct TerminationLog {
    path: Option<(String, std::path::PathBuf)>,
    fallback: bool,
}

impl TerminationLog {
    const MAX: usize = 4096;

    pub(super) fn of(container: &Value, pod: &str) -> Self {
        let path = container["terminationMessagePath"].as_str().map(|path| {
            let file = std::env::temp_dir().join(format!(
                "fake-kubelet-{}-{pod}-termination-log",
                std::process::id()
            ));
            // The kubelet creates the file (empty, mode 0666: a container of any user
            // writes it) before the container starts.
            let _ = std::fs::write(&file, b"");
            let _ = std::fs::set_permissions(
                &file,
                std::os::unix::fs::PermissionsExt::from_mode(0o666),
            );
            (path.to_owned(), file)
        });
        Self {
            path,
            fallback: container["terminationMessagePolicy"] == "FallbackToLogsOnError",
        }
    }

    pub(super) fn map_env(&self, env: Vec<(String, String)>) -> Vec<(String, String)> {
        let Some((path, file)) = &self.path else {
            return env;
        };
        env.into_iter()
            .map(|(k, v)| {
                if v == *path {
                    (k, file.display().to_string())
                } else {
                    (k, v)
                }
            })
            .collect()
    }

    pub(super) fn message(&self, code: i32, log: &LogBuffer) -> String {
        let bytes = self
            .path
            .as_ref()
            .and_then(|(_, file)| {
                let bytes = std::fs::read(file).ok();
                let _ = std::fs::remove_file(file);
                bytes
            })
            .unwrap_or_default();
        let tail = &bytes[bytes.len().saturating_sub(Self::MAX)..];
        if !tail.is_empty() || !self.fallback || code == 0 {
            return String::from_utf8_lossy(tail).into_owned();
        }
        let lines = log.lines.lock().expect("lock");
        let last: Vec<&str> = lines
            .iter()
            .rev()
            .take(80)
            .rev()
            .map(String::as_str)
            .collect();
        let text = last.join("\n").into_bytes();
        String::from_utf8_lossy(&text[text.len().saturating_sub(2048)..]).into_owned()
    }
}
