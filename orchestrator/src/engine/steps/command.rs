//! `run` steps: an operator command (argv, no shell), e.g. switching DNS at cutover.
//!
//! The command runs in the plan's directory with `RELOCATE_PLAN`, `RELOCATE_STAGE` and
//! `RELOCATE_BIN` set, in its own process group (a Ctrl-C interrupts the run, which
//! then kills it). Its output lines become events, each cut at [`MAX_LINE_BYTES`] so a
//! command printing without newlines cannot fill memory; a non-zero exit fails the
//! stage; so does running longer than the step's `timeout` (default
//! [`DEFAULT_TIMEOUT`]), after which it is killed; an interrupt kills it too.

use std::process::Stdio;
use std::time::Duration;

use plans::{RunCommand, Stage};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{StepFailure, StepResult};
use crate::engine::{Context, EngineError};
use crate::progress::{Event, StepSummary};

/// How long a `run` step may take when the plan says nothing.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Longest output line kept; the rest of the line is dropped and counted.
pub(crate) const MAX_LINE_BYTES: usize = 8 * 1024;

/// Run the command to completion.
pub(crate) async fn run(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    run: &RunCommand,
) -> Result<(StepSummary, StepResult), EngineError> {
    let argv = run.argv();
    let failed = |cause| Ok((StepSummary::default(), StepResult::Failed(cause)));
    let Some((program, args)) = argv.split_first() else {
        return failed(StepFailure::EmptyCommand);
    };
    let timeout = match run.timeout().map(plans::units::parse_duration).transpose() {
        Ok(t) => t.unwrap_or(DEFAULT_TIMEOUT),
        Err(why) => return failed(StepFailure::BadTimeout(why)),
    };
    // Absolute, because the command also runs with the plan's directory as its cwd.
    let base = std::path::absolute(ctx.plan.base_dir())
        .unwrap_or_else(|_| ctx.plan.base_dir().to_path_buf());
    let base = base.as_path();
    let program_path = if program.contains('/') && !std::path::Path::new(program).is_absolute() {
        base.join(program)
    } else {
        program.into()
    };
    ctx.emit(Event::StepStarted {
        stage: stage.name.clone(),
        step: step_index + 1,
        kind: "run".into(),
        workload: None,
        description: format!("run {}", argv.join(" ")),
        counters: None,
    });
    let mut child = match Command::new(&program_path)
        .args(args)
        .current_dir(base)
        .env("RELOCATE_PLAN", ctx.plan.name())
        .env("RELOCATE_STAGE", &stage.name)
        .env("RELOCATE_BIN", &ctx.options.relocate_bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C at the terminal interrupts the run (which
        // then kills the command) rather than failing the step under it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(source) => {
            return failed(StepFailure::Spawn {
                program: program.clone(),
                source,
            });
        }
    };
    let stdout = child.stdout.take().map(BufReader::new);
    let stderr = child.stderr.take().map(BufReader::new);
    let forward_and_wait = async {
        let (mut out, mut err) = (stdout, stderr);
        while out.is_some() || err.is_some() {
            let line = tokio::select! {
                l = next(&mut out) => l,
                l = next(&mut err) => l,
            };
            if let Some(line) = line {
                ctx.emit(Event::CommandOutput {
                    stage: stage.name.clone(),
                    line,
                });
            }
        }
        child.wait().await
    };
    let status = tokio::select! {
        s = tokio::time::timeout(timeout, forward_and_wait) => s,
        () = ctx.cancel.cancelled() => {
            let _ = child.kill().await;
            return Ok((StepSummary::default(), StepResult::Interrupted));
        }
    };
    match status {
        Ok(Ok(s)) if s.success() => Ok((StepSummary::default(), StepResult::Succeeded)),
        Ok(Ok(status)) => failed(StepFailure::Exit {
            command: argv.join(" "),
            status,
        }),
        Ok(Err(source)) => failed(StepFailure::Wait {
            program: program.clone(),
            source,
        }),
        Err(_) => {
            let _ = child.kill().await;
            failed(StepFailure::Timeout {
                command: argv.join(" "),
                after: timeout,
            })
        }
    }
}

/// Next line of an optional reader; `None` (and the reader dropped) at its end.
async fn next<R: AsyncBufRead + Unpin>(reader: &mut Option<R>) -> Option<String> {
    match reader {
        Some(r) => match read_capped_line(r, MAX_LINE_BYTES).await {
            Ok(Some(line)) => Some(line),
            _ => {
                *reader = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// One line (without its newline) of at most `max` bytes, decoded lossily; the rest of
/// a longer line is read and dropped, and the line says how much was cut. `None` at
/// the end of the stream.
async fn read_capped_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut cut = 0usize;
    let mut any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        cut += chunk.len().saturating_sub(room);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(&line).into_owned();
    if cut > 0 {
        text.push_str(&format!(" … ({cut} more bytes cut)"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finding_14_long_output_lines_are_cut_not_buffered_whole() {
        let mut input: Vec<u8> = b"short\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend(b"\nlast \xff");
        let mut reader = BufReader::with_capacity(1024, input.as_slice());
        let first = read_capped_line(&mut reader, 64).await.unwrap();
        assert_eq!(first.as_deref(), Some("short"));
        let long = read_capped_line(&mut reader, 64).await.unwrap().unwrap();
        assert_eq!(long, format!("{} … (99936 more bytes cut)", "x".repeat(64)));
        let last = read_capped_line(&mut reader, 64).await.unwrap();
        assert_eq!(last.as_deref(), Some("last \u{fffd}"));
        assert_eq!(read_capped_line(&mut reader, 64).await.unwrap(), None);
    }
}
