//! `relocate verify`: check an exported record (and optionally the target store, one
//! object's proof, or a store against someone else's digest list) on any machine. Prints
//! a `✔`/`✘` line per check; exits 0 when all hold, 7 ([`crate::exit::VERIFY_FAILED`])
//! otherwise. What decides the verdict on a record is the auditor's own crate,
//! `relocate_verifier`; store I/O (`--target`, `--digests`) is [`crate::audit`]'s; this
//! is the glue.

use std::path::PathBuf;

use anyhow::Context;
use connectors::store::{Access, open_store};
use plans::{ChecksumAlgorithm, ValidatedPlan};

use super::load_plan;
use relocate_verifier::{Bundle, Outcome, Report, proof, trust};

use crate::audit::export::reviewed_plan;
use crate::audit::{digests, target};
use crate::cli::output::outln;
use crate::exit;

/// `relocate verify` arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The exported record (`*.intoto.jsonl`, from `relocate record export`).
    #[arg(required_unless_present = "digests")]
    pub record: Option<PathBuf>,
    /// The reviewed plan: its digest and pinned keys must be the record's.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Also re-hash every object at the target stores (opened as the plan describes).
    #[arg(long, requires = "plan", requires = "record")]
    pub target: bool,
    /// Print the proof that object KEY belongs to a stage's signed manifest.
    #[arg(long, value_name = "KEY", requires = "record")]
    pub object: Option<String>,
    /// Pin the operator key: `ed25519:<base64>`, or a `.pub` file holding it (the plan's
    /// `operator.publicKey` pins it too).
    #[arg(long, value_name = "KEY|FILE")]
    pub operator_key: Option<String>,
    /// Print one JSON document (verdict, limits, pins, per-stage attestations, every
    /// check) instead of lines.
    #[arg(long)]
    pub json: bool,
    /// A digest list (`sha256sum` format, or an in-toto statement's subjects) to check
    /// the store given by `--store` against.
    #[arg(long, value_name = "FILE", requires = "store")]
    pub digests: Option<PathBuf>,
    /// The store to check against `--digests`: an object_store URL.
    #[arg(long, value_name = "URL", requires = "digests")]
    pub store: Option<String>,
    /// Store option `KEY=VALUE` (repeatable); give secrets as `${env:NAME}`.
    #[arg(long = "option", value_name = "KEY=VALUE", requires = "store")]
    pub options: Vec<String>,
    /// Hash algorithm of the digest list.
    #[arg(long, value_enum, default_value = "sha256")]
    pub algorithm: Algorithm,
}

/// Hash algorithm of a digest list.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Algorithm {
    /// SHA-256 (`sha256sum`).
    Sha256,
    /// BLAKE3 (`b3sum`).
    Blake3,
}

/// Run the checks asked for.
pub(crate) async fn verify(args: &VerifyArgs) -> anyhow::Result<u8> {
    let mut report = if args.json {
        Report::quiet()
    } else {
        Report::printing()
    };
    let plan = args.plan.as_deref().map(load_plan).transpose()?;
    let mut outcome = None;
    if let Some(path) = &args.record {
        outcome = Some(verify_record(args, path, plan.as_ref(), &mut report).await?);
    }
    if let (Some(list), Some(url)) = (&args.digests, &args.store) {
        verify_digests(args, list, url, &mut report).await?;
    }
    if args.json {
        let record = outcome.as_ref().and_then(|o| o.record.as_ref());
        let pins = outcome.as_ref().map(|o| o.pins.clone()).unwrap_or_default();
        let doc = trust::to_json(&report, record, &pins);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        outln!("{}", report.summary());
    }
    Ok(if report.all_hold() {
        exit::SUCCESS
    } else {
        exit::VERIFY_FAILED
    })
}

/// `--operator-key`: the key itself, or a file holding it.
/// The record's checks (the verifier crate), then what needs a store: the target.
async fn verify_record(
    args: &VerifyArgs,
    path: &std::path::Path,
    plan: Option<&ValidatedPlan>,
    report: &mut Report,
) -> anyhow::Result<Outcome> {
    let flag = args
        .operator_key
        .as_deref()
        .map(super::operator_key_arg)
        .transpose()
        .context("--operator-key")?;
    let bundle =
        Bundle::read(path).with_context(|| format!("reading the record {}", path.display()))?;
    let reviewed = plan.map(reviewed_plan);
    let outcome = relocate_verifier::verify_record(&bundle, reviewed.as_ref(), flag, report)
        .context("the plan's operator.publicKey")?;
    let Some(record) = &outcome.record else {
        return Ok(outcome);
    };
    let dir = bundle.manifests_dir();
    if let (true, Some(plan)) = (args.target, plan)
        && let Err(e) = target::check_target(&outcome.manifests, &dir, plan, report).await
    {
        report.fail(format!("target check could not run: {e}"));
    }
    if let Some(key) = &args.object
        && let Err(e) = proof::prove_object(record, &outcome.manifests, &dir, key, report)
    {
        report.fail(format!("proof of `{key}` could not be built: {e}"));
    }
    Ok(outcome)
}

async fn verify_digests(
    args: &VerifyArgs,
    list: &std::path::Path,
    url: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let algorithm = match args.algorithm {
        Algorithm::Sha256 => ChecksumAlgorithm::Sha256,
        Algorithm::Blake3 => ChecksumAlgorithm::Blake3,
    };
    let expected = digests::read_digest_list(list, algorithm)?;
    let mut store = plans::Store {
        region: String::new(),
        url: url.to_owned(),
        options: Default::default(),
        multipart: None,
        retry: None,
        credentials: plans::Credentials::Options,
    };
    for option in &args.options {
        // The value is never echoed: it may be a secret typed by mistake.
        let (k, v) = option
            .split_once('=')
            .context("--option: expected KEY=VALUE")?;
        if k == "credentials" && v == "ambient" {
            // The store takes the machine's credentials, as a plan's `credentials: ambient`.
            store.credentials = plans::Credentials::Ambient;
            continue;
        }
        if plans::secret::is_secret_key(k) && !plans::secret::OptionValue::parse(v).is_reference() {
            anyhow::bail!(
                "--option {k}: give secrets as ${{env:NAME}} or ${{file:PATH}}, not literally (a command line is visible to other users and kept in shell history)"
            );
        }
        store.options.insert(k.to_owned(), v.to_owned());
    }
    let cwd = std::env::current_dir().context("current directory")?;
    let store = plans::StoreSpec::from_store("store", &store).with_context(|| {
        format!(
            "--store {} (pass `--option credentials=ambient` to use this machine's credentials)",
            connectors::store::display_url(url)
        )
    })?;
    let handle = open_store("store", &store, &cwd, Access::Read)
        .with_context(|| format!("opening {}", connectors::store::display_url(url)))?;
    digests::check_digests(&expected, &handle, algorithm, report).await;
    Ok(())
}
