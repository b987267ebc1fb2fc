//! `run` steps: an operator command (argv, no shell), e.g. switching DNS at cutover.
//!
//! The command runs in the plan's directory with `RELOCATE_PLAN`, `RELOCATE_STAGE` and
//! `RELOCATE_BIN` set; its output lines become events; a non-zero exit fails the stage;
//! an interrupt kills it.

use std::process::Stdio;

use plans::Stage;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::StepResult;
use crate::engine::{Context, EngineError};
use crate::progress::{Event, StepSummary};

/// Run the command to completion.
pub(crate) async fn run(
    ctx: &Context,
    stage: &Stage,
    step_index: usize,
    argv: &[String],
) -> Result<(StepSummary, StepResult), EngineError> {
    let Some((program, args)) = argv.split_first() else {
        return Ok((
            StepSummary::default(),
            StepResult::Failed("empty command".into()),
        ));
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
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Ok((
                StepSummary::default(),
                StepResult::Failed(format!("cannot start {program}: {e}")),
            ));
        }
    };
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let forward = async {
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
    };
    tokio::select! {
        () = forward => {}
        () = ctx.cancel.cancelled() => {
            let _ = child.kill().await;
            return Ok((StepSummary::default(), StepResult::Interrupted));
        }
    }
    let status = tokio::select! {
        s = child.wait() => s,
        () = ctx.cancel.cancelled() => {
            let _ = child.kill().await;
            return Ok((StepSummary::default(), StepResult::Interrupted));
        }
    };
    Ok(match status {
        Ok(s) if s.success() => (StepSummary::default(), StepResult::Succeeded),
        Ok(s) => (
            StepSummary::default(),
            StepResult::Failed(format!("{} exited with {s}", argv.join(" "))),
        ),
        Err(e) => (
            StepSummary::default(),
            StepResult::Failed(format!("waiting for {program}: {e}")),
        ),
    })
}

/// Next line of an optional reader; `None` (and the reader dropped) at its end.
async fn next<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut Option<tokio::io::Lines<R>>,
) -> Option<String> {
    match reader {
        Some(r) => match r.next_line().await {
            Ok(Some(line)) => Some(line),
            _ => {
                *reader = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}
