//! `relocate keys generate`: an approver's (or operator's) Ed25519 key pair.

use std::path::Path;

use crate::cli::output::outln;
use anyhow::Context;

/// Write NAME.key (0600) and NAME.pub; print the public key for the plan.
pub(crate) fn generate(out: &Path) -> anyhow::Result<u8> {
    let public = connectors::signoff::keys::generate_keypair(out)
        .with_context(|| format!("generating a key pair at {}", out.display()))?;
    outln!(
        "wrote {}.key (private, keep it secret) and {}.pub",
        out.display(),
        out.display()
    );
    outln!("publicKey: \"{public}\"");
    Ok(crate::exit::SUCCESS)
}
