//! DSSE envelopes, signed. The envelope type, its parsing and its verification are the
//! auditor's verifier's ([`relocate_verifier::dsse`], re-exported here so there is one
//! definition); this module adds only signing with a [`SecretKey`].

pub use relocate_verifier::dsse::{Envelope, MAX_ENVELOPE_BYTES, Signature, pae};

use super::keys::SecretKey;

/// Signing an [`Envelope`] (import this trait to call `Envelope::sign`).
pub trait SignEnvelope {
    /// Wrap `payload` and sign it with `key`.
    fn sign(payload_type: impl Into<String>, payload: Vec<u8>, key: &SecretKey) -> Self;
    /// Add `key`'s signature (co-signing the same payload).
    fn add_signature(&mut self, key: &SecretKey);
}

impl SignEnvelope for Envelope {
    fn sign(payload_type: impl Into<String>, payload: Vec<u8>, key: &SecretKey) -> Self {
        let mut envelope = Envelope::unsigned(payload_type, payload);
        envelope.add_signature(key);
        envelope
    }

    fn add_signature(&mut self, key: &SecretKey) {
        let sig = key.sign_bytes(&self.signing_input());
        self.push_signature(key.public().key_id(), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signoff::SignoffError;
    use relocate_verifier::VerifyError;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed(&[seed; 32])
    }

    #[test]
    fn signed_envelopes_verify_and_edits_do_not() {
        let signer = key(1);
        let env = Envelope::sign("application/x-test", b"payload".to_vec(), &signer);
        let back = Envelope::from_json(&env.to_json_pretty()).expect("parses");
        back.verify_with(&signer.public()).expect("verifies");
        let mut edited = back.clone();
        edited.payload = b"pAyload".to_vec();
        assert!(matches!(
            edited.verify_with(&signer.public()),
            Err(VerifyError::BadSignature { .. })
        ));
        let err: SignoffError = edited
            .verify_with(&signer.public())
            .expect_err("edited")
            .into();
        assert!(err.to_string().contains("changed after signing"), "{err}");
    }

    #[test]
    fn co_signed_envelope_verifies_for_each_signer() {
        let mut env = Envelope::sign("t", b"x".to_vec(), &key(1));
        env.add_signature(&key(2));
        env.verify_with(&key(1).public()).expect("first");
        env.verify_with(&key(2).public()).expect("second");
        assert!(env.verify_with(&key(3).public()).is_err());
    }
}
