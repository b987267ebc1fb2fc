//! The state directory's operator key against the plan's pin (`operator.publicKey`)
//! and `relocate run --operator-key FILE`, settled before the engine signs anything.
//!
//! A state directory signs all its evidence with one key (`operator.key`). When the plan
//! pins the operator's public key, a run refuses a state whose key is another one,
//! naming both key ids, and a fresh state gets its key only from `--operator-key FILE`
//! (copied in, mode 0600): relocate never invents a key the plan would not accept.
//! Without a pin, a fresh state takes `--operator-key` when given, else the engine
//! generates a key as before.

use std::path::Path;

use connectors::signoff::keys::{PublicKey, SecretKey};

use super::{StateDir, StateError};

/// Check (and, for a fresh state given `--operator-key`, install) the operator key.
pub fn settle_operator_key(
    state: &StateDir,
    pinned: Option<&str>,
    given: Option<&Path>,
) -> Result<(), StateError> {
    let stem = state.operator_key_stem();
    let key_path = stem.with_extension("key");
    let pinned = pinned
        .map(|text| {
            PublicKey::parse(text).map_err(|source| StateError::OperatorKey {
                path: state.root().join("(plan) operator.publicKey"),
                source: source.into(),
            })
        })
        .transpose()?;
    let given = given
        .map(|path| {
            SecretKey::load(path)
                .map(|k| (k, path))
                .map_err(|source| StateError::OperatorKey {
                    path: path.to_path_buf(),
                    source,
                })
        })
        .transpose()?;
    let mismatch =
        |found: &PublicKey, by: String, wanted: &PublicKey| StateError::OperatorKeyMismatch {
            dir: state.root().to_path_buf(),
            found: found.key_id(),
            by,
            wanted: wanted.key_id(),
        };
    let plan_pin = "the plan's `operator.publicKey`".to_owned();
    if key_path.exists() {
        let current = SecretKey::load(&key_path)
            .map_err(|source| StateError::OperatorKey {
                path: key_path.clone(),
                source,
            })?
            .public();
        if let Some((key, path)) = &given
            && key.public() != current
        {
            return Err(mismatch(
                &current,
                format!("--operator-key {}", path.display()),
                &key.public(),
            ));
        }
        if let Some(pin) = pinned.filter(|p| *p != current) {
            return Err(mismatch(&current, plan_pin, &pin));
        }
        return Ok(());
    }
    match (given, pinned) {
        (Some((key, path)), pin) => {
            if let Some(pin) = pin.filter(|p| *p != key.public()) {
                return Err(StateError::OperatorKeyMismatch {
                    dir: state.root().to_path_buf(),
                    found: format!(
                        "{} (--operator-key {})",
                        key.public().key_id(),
                        path.display()
                    ),
                    by: plan_pin,
                    wanted: pin.key_id(),
                });
            }
            key.save_new(&stem)
                .map_err(|source| StateError::OperatorKey {
                    path: key_path,
                    source,
                })?;
            tracing::info!(key_id = %key.public().key_id(), "operator key installed in the state directory");
            Ok(())
        }
        (None, Some(pin)) => Err(StateError::OperatorKeyMissing {
            dir: state.root().to_path_buf(),
            pinned: pin.key_id(),
        }),
        (None, None) => Ok(()),
    }
}
