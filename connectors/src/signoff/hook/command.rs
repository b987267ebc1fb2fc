//! The `command` hook: run the approver's program (no shell) with the evidence on
//! stdin and read a signed approval envelope from its stdout. A non-zero exit is a
//! failure with the end of stderr; a program that outlives the timeout is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::{ApprovalHook, ApprovalRequest, HookError, tail};
use crate::signoff::dsse::{Envelope, MAX_ENVELOPE_BYTES};

/// How much of stderr is kept for the error message.
const STDERR_TAIL_BYTES: usize = 2048;

/// Runs `program` with `args` and reads the approval from its stdout.
///
/// Program and arguments are separate fields so that a hook without a program cannot
/// be built (a plan's `command: []` is refused by validation and by [`super::hook_for`]).
#[derive(Debug, Clone)]
pub struct CommandHook {
    /// The program; a relative path with a `/` resolves against `cwd`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (the plan's directory).
    pub cwd: PathBuf,
    /// Extra environment for the program.
    pub env: Vec<(String, String)>,
    /// How long the program may run.
    pub timeout: Duration,
}

/// What the program left behind.
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stdout_overflow: bool,
    stderr: Vec<u8>,
}

impl CommandHook {
    /// A hook from a plan's argv; `None` when it names no program.
    pub fn from_argv(
        argv: &[String],
        cwd: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Option<Self> {
        let (program, args) = argv.split_first()?;
        Some(Self {
            program: program.clone(),
            args: args.to_vec(),
            cwd,
            env,
            timeout,
        })
    }

    fn program(&self) -> PathBuf {
        let program = Path::new(&self.program);
        if program.is_relative() && self.program.contains('/') {
            self.cwd.join(program)
        } else {
            program.to_path_buf()
        }
    }

    fn command(&self, req: &ApprovalRequest) -> Command {
        let mut cmd = Command::new(self.program());
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .env("RELOCATE_STAGE", &req.stage)
            .env("RELOCATE_APPROVER", &req.approver)
            .env("RELOCATE_EVIDENCE", &req.evidence_path)
            .env("RELOCATE_PLAN", &req.plan_name)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal reaches relocate, which
            // stops the gate and kills the hook, instead of killing the hook first and
            // being read as the approver's failure.
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Feed stdin, drain stdout and stderr concurrently (so neither pipe can fill up and
    /// block the program), then wait for it to exit.
    async fn run(child: &mut Child, input: &[u8]) -> std::io::Result<Output> {
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let write = async {
            if let Some(mut stdin) = stdin {
                // A program that exits without reading all of stdin is not an error here;
                // its exit status and stdout decide.
                let _ = stdin.write_all(input).await;
                let _ = stdin.shutdown().await;
            }
        };
        let ((), out, err) = tokio::join!(
            write,
            read_limited(stdout, MAX_ENVELOPE_BYTES),
            read_limited(stderr, MAX_ENVELOPE_BYTES)
        );
        let (stdout, stdout_overflow) = out?;
        let (stderr, _) = err?;
        let status = child.wait().await?;
        Ok(Output {
            status,
            stdout,
            stdout_overflow,
            stderr,
        })
    }
}

/// Read up to `limit` bytes; report whether there was more (the rest is discarded).
async fn read_limited<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limit: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(mut reader) = reader else {
        return Ok((Vec::new(), false));
    };
    let mut buf = Vec::new();
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    let overflow = buf.len() > limit;
    if overflow {
        buf.truncate(limit);
        tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    }
    Ok((buf, overflow))
}

#[async_trait]
impl ApprovalHook for CommandHook {
    async fn request(&self, req: &ApprovalRequest) -> Result<Envelope, HookError> {
        let approver = req.approver.clone();
        let program = self.program();
        let spawn_err = |source| HookError::Spawn {
            approver: approver.clone(),
            program: program.display().to_string(),
            source,
        };
        tracing::info!(approver = %req.approver, stage = %req.stage, hook = %self.describe(), "asking approver");
        let mut child = self.command(req).spawn().map_err(spawn_err)?;
        let outcome =
            tokio::time::timeout(self.timeout, Self::run(&mut child, &req.evidence_json)).await;
        let output = match outcome {
            Ok(output) => output.map_err(spawn_err)?,
            Err(_) => {
                if let Err(e) = child.kill().await {
                    tracing::warn!(approver = %approver, error = %e, "could not kill timed-out hook command");
                }
                return Err(HookError::Timeout {
                    approver,
                    after: self.timeout,
                });
            }
        };
        if !output.stderr.is_empty() {
            tracing::debug!(approver = %approver, stderr = %tail(&output.stderr, STDERR_TAIL_BYTES), "hook command stderr");
        }
        if !output.status.success() {
            return Err(HookError::CommandFailed {
                approver,
                status: output.status,
                stderr_tail: tail(&output.stderr, STDERR_TAIL_BYTES),
            });
        }
        if output.stdout_overflow {
            return Err(HookError::BadResponse {
                approver,
                detail: format!("stdout is over the {MAX_ENVELOPE_BYTES}-byte limit"),
            });
        }
        Envelope::from_json(&output.stdout).map_err(|e| HookError::BadResponse {
            approver,
            detail: format!("stdout is not an approval envelope: {e}"),
        })
    }

    fn describe(&self) -> String {
        let mut argv = vec![self.program.as_str()];
        argv.extend(self.args.iter().map(String::as_str));
        format!("command `{}`", argv.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::hook::tests::{auditor, request};

    fn sh(script: &str, timeout: Duration) -> CommandHook {
        CommandHook {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("EXTRA".into(), "yes".into())],
            timeout,
        }
    }

    #[tokio::test]
    async fn successful_command_returns_the_envelope_it_printed() {
        let req = request("copy");
        let approval = crate::signoff::approve(
            &auditor(),
            &req.evidence,
            crate::signoff::Decision::Approve,
            None,
        )
        .expect("approve");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("approval.json"), approval.to_json_pretty()).expect("write");
        // Checks stdin is the evidence and the env is set, then prints the approval.
        let script = format!(
            "cat > {0}/stdin.json && [ \"$RELOCATE_STAGE\" = copy ] && [ \"$RELOCATE_APPROVER\" = auditor ] \
             && [ \"$RELOCATE_EVIDENCE\" = /state/copy/evidence.json ] && [ \"$EXTRA\" = yes ] \
             && cat {0}/approval.json",
            dir.path().display()
        );
        let got = sh(&script, Duration::from_secs(5))
            .request(&req)
            .await
            .expect("approved");
        assert_eq!(got, approval);
        assert_eq!(
            std::fs::read(dir.path().join("stdin.json")).expect("stdin"),
            req.evidence_json
        );
    }

    #[tokio::test]
    async fn non_zero_exit_is_command_failed_with_stderr() {
        let req = request("copy");
        let err = sh(
            "cat >/dev/null; echo 'auditor says no key' >&2; exit 3",
            Duration::from_secs(5),
        )
        .request(&req)
        .await
        .expect_err("fails");
        match err {
            HookError::CommandFailed {
                approver,
                status,
                stderr_tail,
            } => {
                assert_eq!(approver, "auditor");
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr_tail, "auditor says no key");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn slow_command_times_out_and_is_killed() {
        let req = request("copy");
        let started = std::time::Instant::now();
        let err = sh("exec sleep 10", Duration::from_millis(200))
            .request(&req)
            .await
            .expect_err("times out");
        assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn garbage_stdout_is_bad_response_and_missing_program_is_spawn() {
        let req = request("copy");
        let err = sh("echo not-an-envelope", Duration::from_secs(5))
            .request(&req)
            .await
            .expect_err("bad");
        assert!(matches!(err, HookError::BadResponse { .. }), "{err:?}");

        let hook = CommandHook {
            program: "./no-such-hook".into(),
            args: vec![],
            cwd: std::env::temp_dir(),
            env: vec![],
            timeout: Duration::from_secs(5),
        };
        assert_eq!(hook.program(), std::env::temp_dir().join("no-such-hook"));
        let err = hook.request(&req).await.expect_err("missing");
        assert!(matches!(err, HookError::Spawn { .. }), "{err:?}");
    }
}
