//! Warnings about `${file:…}` secrets a reviewer would want to hear of: a file any
//! user of the machine can read, or one outside the plan's directory (a plan that
//! reaches for `../../home/x/.aws/…` deserves a second look). Warnings, not errors:
//! the plan stays valid, and the file's contents are never read or printed here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use plans::ValidatedPlan;
use plans::secret::OptionValue;

/// One `${file:…}` secret worth a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretFileWarning {
    /// The store whose option names the file.
    pub store: String,
    /// The option key.
    pub key: String,
    /// The file, as resolved against the plan's directory.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl std::fmt::Display for SecretFileWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "store `{}` option `{}`: secret file {} {}",
            self.store,
            self.key,
            self.path.display(),
            self.problem
        )
    }
}

/// Every warning about the plan's `${file:…}` secrets (missing files are left to the
/// run, which says so when it resolves them).
pub(crate) fn check(plan: &ValidatedPlan) -> Vec<SecretFileWarning> {
    let base = plan.base_dir();
    let canonical_base = std::fs::canonicalize(base).ok();
    let mut warnings = Vec::new();
    for (store, spec) in &plan.plan().stores {
        for (key, raw) in &spec.options {
            let OptionValue::File(file) = OptionValue::parse(raw) else {
                continue;
            };
            let path = base.join(&file);
            let mut warn = |problem| {
                warnings.push(SecretFileWarning {
                    store: store.clone(),
                    key: key.clone(),
                    path: path.clone(),
                    problem,
                });
            };
            if let (Some(base), Ok(real)) = (&canonical_base, std::fs::canonicalize(&path))
                && !real.starts_with(base)
            {
                warn("is outside the plan's directory");
            }
            if world_readable(&path) {
                warn("is readable by every user of this machine (chmod 600 it)");
            }
        }
    }
    warnings
}

fn world_readable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// Log each warning on stderr.
pub(crate) fn warn(plan: &ValidatedPlan) {
    for w in check(plan) {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with_secret(dir: &Path, file: &str) -> ValidatedPlan {
        let text = format!(
            r#"apiVersion: relocate/v1
kind: MigrationPlan
name: secrets
regions:
  a: {{ jurisdiction: RU }}
  b: {{ jurisdiction: CH }}
source: a
target: b
stores:
  src: {{ region: a, url: "file://./src/" }}
  dst:
    region: b
    url: "s3://bucket/"
    options:
      endpoint: "https://s3.example"
      access_key_id: "${{env:ACCESS_KEY_ID}}"
      secret_access_key: "${{file:{file}}}"
workloads:
  data:
    objects: {{ from: src, to: dst }}
stages:
  - name: seed
    steps: [ {{ copy: data }}, {{ verify: data }} ]
"#
        );
        plans::parse(&text, &dir.join("plan.yaml")).expect("valid plan")
    }

    #[test]
    fn finding_09_world_readable_or_outside_secret_files_are_warned_about() {
        let outer = tempfile::tempdir().expect("tempdir");
        let dir = outer.path().join("plan");
        std::fs::create_dir(&dir).expect("mkdir");
        let write = |p: &Path, mode: u32| {
            std::fs::write(p, "s3cr3t").expect("write");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        write(&dir.join("key"), 0o600);
        assert_eq!(check(&plan_with_secret(&dir, "key")), vec![]);

        write(&dir.join("open"), 0o644);
        let w = check(&plan_with_secret(&dir, "open"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].to_string().contains("readable by every user"),
            "{}",
            w[0]
        );

        write(&outer.path().join("far"), 0o600);
        let w = check(&plan_with_secret(&dir, "../far"));
        assert_eq!(w.len(), 1, "{w:?}");
        let text = w[0].to_string();
        assert!(text.contains("outside the plan's directory"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
