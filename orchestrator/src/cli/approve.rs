//! `relocate approve`: the approver's side. Reads a stage's evidence (file or stdin),
//! shows nothing secret, signs an approval or a rejection with the approver's key and
//! prints the approval envelope (stdout, or `--out`). Works as a command hook as is:
//! `relocate approve --key auditor.key --evidence -`.

use std::io::Read;
use std::path::PathBuf;

use crate::cli::output::outln;
use anyhow::Context;
use connectors::signoff::approval::approve as sign_approval;
use connectors::signoff::dsse::Envelope;
use connectors::signoff::keys::SecretKey;
use connectors::signoff::statement::{Decision, parse_evidence};

/// `relocate approve` arguments.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The approver's private key file (from `relocate keys generate`).
    #[arg(long)]
    pub key: PathBuf,
    /// The stage's evidence envelope; `-` reads stdin.
    #[arg(long)]
    pub evidence: String,
    /// Sign a rejection instead of an approval.
    #[arg(long)]
    pub reject: bool,
    /// Why (recorded with the decision; recommended for rejections).
    #[arg(long)]
    pub reason: Option<String>,
    /// Write the approval here instead of stdout (e.g. into the file hook's drop zone).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Show the approver what they are about to sign (on stderr, so stdout stays the
/// approval envelope a hook returns): plan, stage, attempt, and per workload the counts
/// and the manifest root or the applied resources.
fn describe(evidence: &Envelope) -> anyhow::Result<()> {
    let (_, e) = parse_evidence(evidence).context("the envelope is not stage evidence")?;
    let mut text = format!(
        "signing stage {} (attempt {}) of plan {} ({}), {} → {}, run by {}",
        e.stage, e.attempt, e.plan, e.plan_digest, e.source_region, e.target_region, e.operator
    );
    for w in &e.workloads {
        match &w.manifest_root {
            Some(root) => text.push_str(&format!(
                "\n  {}: {} objects, {} bytes, manifest root {root}",
                w.name, w.objects, w.bytes
            )),
            None => text.push_str(&format!(
                "\n  {}: {} Kubernetes resources applied",
                w.name,
                w.resources.len()
            )),
        }
    }
    for s in &e.steps {
        text.push_str(&format!(
            "\n  step {}{}: {}",
            s.kind,
            s.workload
                .as_deref()
                .map(|w| format!(" {w}"))
                .unwrap_or_default(),
            s.outcome
        ));
    }
    eprintln!("{text}");
    Ok(())
}

/// Sign and print.
pub(crate) fn approve(args: &ApproveArgs) -> anyhow::Result<u8> {
    let key = SecretKey::load(&args.key)
        .with_context(|| format!("reading key {}", args.key.display()))?;
    let raw = if args.evidence == "-" {
        read_bounded(std::io::stdin()).context("reading evidence from stdin")?
    } else {
        let file = std::fs::File::open(&args.evidence)
            .with_context(|| format!("reading evidence {}", args.evidence))?;
        read_bounded(file).with_context(|| format!("reading evidence {}", args.evidence))?
    };
    let evidence = Envelope::from_json(&raw).context("the evidence is not a DSSE envelope")?;
    describe(&evidence)?;
    let decision = if args.reject {
        Decision::Reject
    } else {
        Decision::Approve
    };
    let approval = sign_approval(&key, &evidence, decision, args.reason.clone())
        .context("signing the approval")?;
    let json = String::from_utf8_lossy(&approval.to_json_pretty()).into_owned();
    match &args.out {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &json).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("approval written to {}", path.display());
        }
        None => outln!("{json}"),
    }
    Ok(crate::exit::SUCCESS)
}

/// Largest evidence accepted: real evidence is a few KiB; anything this big is not it.
const MAX_EVIDENCE: u64 = 16 << 20;

/// Read all of `input`, refusing (rather than silently cutting) more than [`MAX_EVIDENCE`]
/// bytes: a cut envelope followed by padding could otherwise parse and be signed.
fn read_bounded(input: impl Read) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    input.take(MAX_EVIDENCE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_EVIDENCE {
        anyhow::bail!(
            "the evidence is larger than {} MiB; refusing to sign it",
            MAX_EVIDENCE >> 20
        );
    }
    Ok(buf)
}
