//! `relocate approve`: the approver's side. Reads a stage's evidence (file or stdin),
//! checks who signed it, shows what it claims (all of it with `--show`), signs an
//! approval or a rejection with the approver's key and prints the approval envelope
//! (stdout, or `--out`).
//!
//! **Whose evidence.** Evidence handed to an approver may have been edited (to claim
//! 999999 objects, say). So `approve` checks the operator's signature under a pinned
//! key: the plan's `operator.publicKey` (`--plan`, which also requires the evidence to
//! be of that plan) or `--operator-key`. Unsigned evidence, evidence edited after the
//! operator signed it and evidence signed by another key are refused (exit 5). Without
//! a pin it refuses, unless `--unpinned` says the approver accepts evidence whose
//! author is unchecked, or relocate itself runs it as a command hook (`--evidence -`
//! with `RELOCATE_EVIDENCE` set): the evidence then comes straight from the run over a
//! pipe, and the approval says so on stderr. That keeps
//! `relocate approve --key auditor.key --evidence -` working as a hook as is.

use std::io::Read;
use std::path::PathBuf;

use crate::cli::output::outln;
use anyhow::Context;
use connectors::signoff::approval::{approve as sign_approval, check_evidence};
use connectors::signoff::dsse::Envelope;
use connectors::signoff::keys::{PublicKey, SecretKey};
use connectors::signoff::statement::{Decision, EvidencePredicate};

use super::load_plan;

/// `relocate approve` arguments.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The approver's private key file (from `relocate keys generate`): the one whose
    /// public key the plan pins for this approver.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
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
    /// The reviewed plan: pins the operator key (`operator.publicKey`) and requires the
    /// evidence to be of this plan (same digest).
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Pin the operator key: `ed25519:<base64>`, or a `.pub` file holding it.
    #[arg(long, value_name = "KEY|FILE")]
    pub operator_key: Option<String>,
    /// Sign although the operator key is not pinned (the evidence's author is unchecked).
    #[arg(long)]
    pub unpinned: bool,
    /// Print the whole evidence statement on stderr before signing: in words (as
    /// `relocate evidence show`), then as the signed JSON.
    #[arg(long)]
    pub show: bool,
}

/// Show the approver what they are about to sign (on stderr, so stdout stays the
/// approval envelope a hook returns): plan, stage, attempt, and per workload the counts
/// and the manifest root or the applied resources.
fn describe(e: &EvidencePredicate) {
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
}

/// Check, sign and print.
pub(crate) fn approve(args: &ApproveArgs) -> anyhow::Result<u8> {
    let Some(key_path) = &args.key else {
        eprintln!(
            "relocate: approve: --key FILE is required: your private key (the NAME.key file \
             `relocate keys generate --out NAME` wrote), whose public key the plan pins for you"
        );
        return Ok(crate::exit::USAGE);
    };
    let key =
        SecretKey::load(key_path).with_context(|| format!("reading key {}", key_path.display()))?;
    let raw = if args.evidence == "-" {
        read_bounded(std::io::stdin()).context("reading evidence from stdin")?
    } else {
        let file = std::fs::File::open(&args.evidence)
            .with_context(|| format!("reading evidence {}", args.evidence))?;
        read_bounded(file).with_context(|| format!("reading evidence {}", args.evidence))?
    };
    let evidence = Envelope::from_json(&raw).context("the evidence is not a DSSE envelope")?;
    let plan = args.plan.as_deref().map(load_plan).transpose()?;
    let pin = operator_pin(args, plan.as_ref())?;
    let (statement, predicate) = match check_evidence(&evidence, pin.as_ref().map(|(k, _)| k)) {
        Ok(checked) => checked,
        Err(refused) => return refuse(&refused.to_string()),
    };
    if let Some(plan) = &plan
        && predicate.plan_digest != plan.digest().as_str()
    {
        return refuse(&format!(
            "the evidence is of plan digest {}, not of {} ({}); refusing to sign",
            predicate.plan_digest,
            plan.path().display(),
            plan.digest()
        ));
    }
    match &pin {
        Some((k, by)) => eprintln!(
            "the evidence is signed by operator key {} (pinned by {by})",
            k.key_id()
        ),
        None if args.unpinned => eprintln!(
            "WARNING: operator key NOT pinned (--unpinned): anyone could have written this evidence"
        ),
        None if args.evidence == "-" && std::env::var_os("RELOCATE_EVIDENCE").is_some() => {
            eprintln!(
                "operator key not pinned: signing as relocate's command hook (the evidence comes from the run itself)"
            )
        }
        None => {
            return refuse(
                "the operator key is not pinned, so nothing shows who wrote this evidence or that it is unedited: pass --plan PLAN (with operator.publicKey) or --operator-key KEY, or --unpinned to sign anyway",
            );
        }
    }
    if args.show {
        // The same words as `relocate evidence show`, then the signed JSON itself.
        eprintln!(
            "{}",
            crate::engine::guide::render(&predicate, Some(&evidence))
        );
        eprintln!(
            "what approving means:\n  {}\n",
            crate::engine::guide::attests(&predicate)
        );
        let json = serde_json::to_string_pretty(&statement)?;
        eprintln!("the signed statement:\n{json}");
    }
    describe(&predicate);
    let decision = if args.reject {
        Decision::Reject
    } else {
        Decision::Approve
    };
    let approval = sign_approval(&key, &evidence, decision, args.reason.clone())
        .context("signing the approval")?;
    write_approval(args, &approval)?;
    Ok(crate::exit::SUCCESS)
}

/// Print why nothing was signed; exit 5.
fn refuse(why: &str) -> anyhow::Result<u8> {
    eprintln!("relocate: approve: {why}");
    Ok(crate::exit::SIGNOFF)
}

/// The pinned operator key and who pins it: `--plan` and `--operator-key` must agree.
fn operator_pin(
    args: &ApproveArgs,
    plan: Option<&plans::ValidatedPlan>,
) -> anyhow::Result<Option<(PublicKey, &'static str)>> {
    let from_plan = plan
        .and_then(|p| p.plan().operator.as_ref())
        .map(|o| PublicKey::parse(&o.public_key))
        .transpose()
        .context("the plan's operator.publicKey")?;
    let from_flag = args
        .operator_key
        .as_deref()
        .map(super::operator_key_arg)
        .transpose()?;
    match (from_plan, from_flag) {
        (Some(a), Some(b)) if a != b => anyhow::bail!(
            "--operator-key is key {}, but the plan's operator.publicKey is key {}",
            b.key_id(),
            a.key_id()
        ),
        (Some(k), _) => Ok(Some((k, "the plan's operator.publicKey"))),
        (None, Some(k)) => Ok(Some((k, "--operator-key"))),
        (None, None) => Ok(None),
    }
}

fn write_approval(args: &ApproveArgs, approval: &Envelope) -> anyhow::Result<()> {
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
    Ok(())
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
