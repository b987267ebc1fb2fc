//! DSSE v1 envelopes (secure-systems-lab/dsse): the signed container for evidence and
//! approvals. Signatures cover the Pre-Authentication Encoding of (payload type,
//! payload), so neither can be swapped without breaking them. Parsing is bounded in
//! size and reports malformed or truncated input as an error, never a panic. This
//! crate only verifies; signers attach signatures with [`Envelope::push_signature`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use crate::VerifyError;
use crate::keys::PublicKey;

/// Envelopes larger than this are refused before parsing.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// How to interpret `payload`, e.g. `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The signed bytes (base64 in JSON).
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    /// One entry per signer.
    pub signatures: Vec<Signature>,
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Unauthenticated hint naming the key ([`PublicKey::key_id`]); may be empty.
    #[serde(default)]
    pub keyid: String,
    /// Ed25519 signature over the PAE (base64 in JSON).
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

/// DSSE v1 Pre-Authentication Encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// An envelope with no signature yet.
    pub fn unsigned(payload_type: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            payload_type: payload_type.into(),
            payload,
            signatures: Vec::new(),
        }
    }

    /// The bytes a signer signs: the PAE of this envelope's type and payload.
    pub fn signing_input(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Attach a signature made over [`Envelope::signing_input`].
    pub fn push_signature(&mut self, keyid: String, sig: Vec<u8>) {
        self.signatures.push(Signature { keyid, sig });
    }

    /// Succeeds when some signature verifies under `key`. Key ids are only used to
    /// explain a failure: a named-but-failing signature is [`VerifyError::BadSignature`]
    /// (the envelope was changed), otherwise [`VerifyError::NotSignedBy`].
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), VerifyError> {
        let message = pae(&self.payload_type, &self.payload);
        if self.signatures.iter().any(|s| key.verify(&message, &s.sig)) {
            return Ok(());
        }
        let key_id = key.key_id();
        if self.signatures.iter().any(|s| s.keyid == key_id) {
            return Err(VerifyError::BadSignature { key_id });
        }
        Err(VerifyError::NotSignedBy {
            key_id,
            found_key_ids: self.key_ids(),
        })
    }

    /// The key ids the signatures name, in order.
    pub fn key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.keyid.clone()).collect()
    }

    /// Parse an envelope from JSON, refusing more than [`MAX_ENVELOPE_BYTES`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(VerifyError::EnvelopeTooLarge {
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let envelope: Self = serde_json::from_slice(bytes).map_err(|e| {
            let reason = if e.is_eof() {
                format!("truncated input ({e})")
            } else {
                e.to_string()
            };
            VerifyError::MalformedEnvelope { reason }
        })?;
        if envelope.payload_type.is_empty() {
            return Err(VerifyError::MalformedEnvelope {
                reason: "empty payloadType".to_owned(),
            });
        }
        Ok(envelope)
    }

    /// Pretty JSON with a trailing newline, as written to evidence and approval files.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self)
            .expect("an envelope of strings and byte vectors always serializes");
        out.push(b'\n');
        out
    }
}

/// Base64 fields: written as standard base64; read as standard or URL-safe, padded or
/// not, as the DSSE spec requires of verifiers.
mod b64 {
    use super::*;

    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD_LENIENT
            .decode(text.as_bytes())
            .or_else(|_| URL_SAFE_LENIENT.decode(text.as_bytes()))
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE;

    use ed25519_dalek::{Signer, SigningKey};

    struct Key(SigningKey);

    impl Key {
        fn public(&self) -> PublicKey {
            PublicKey::from(self.0.verifying_key())
        }
    }

    fn key(seed: u8) -> Key {
        Key(SigningKey::from_bytes(&[seed; 32]))
    }

    fn sign_with(env: &mut Envelope, key: &Key) {
        let sig = key.0.sign(&env.signing_input()).to_bytes().to_vec();
        env.push_signature(key.public().key_id(), sig);
    }

    fn signed(payload_type: &str, payload: Vec<u8>, key: &Key) -> Envelope {
        let mut env = Envelope::unsigned(payload_type, payload);
        sign_with(&mut env, key);
        env
    }

    #[test]
    fn pae_matches_the_dsse_spec_test_vector() {
        let got = pae("http://example.com/HelloWorld", b"hello world");
        assert_eq!(
            got,
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn spec_envelope_json_parses() {
        let json = br#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let env = Envelope::from_json(json).expect("spec envelope parses");
        assert_eq!(env.payload, b"hello world");
        assert_eq!(env.signatures[0].keyid, "");
        assert_eq!(env.signatures[0].sig.len(), 64);
    }

    #[test]
    fn sign_then_verify_roundtrips_through_json() {
        let signer = key(1);
        let env = signed("application/x-test", b"payload".to_vec(), &signer);
        let json = env.to_json_pretty();
        let text = std::str::from_utf8(&json).expect("utf8");
        assert!(text.contains("\"payloadType\"") && text.contains("\"keyid\""));
        let back = Envelope::from_json(&json).expect("parses");
        assert_eq!(back, env);
        back.verify_with(&signer.public()).expect("verifies");
    }

    #[test]
    fn url_safe_unpadded_base64_is_accepted() {
        let signer = key(1);
        let env = signed("t", vec![0xfb, 0xff, 0xfe], &signer);
        let json = serde_json::json!({
            "payloadType": "t",
            "payload": URL_SAFE.encode(&env.payload).trim_end_matches('='),
            "signatures": [{"keyid": env.signatures[0].keyid,
                            "sig": URL_SAFE.encode(&env.signatures[0].sig)}],
        });
        let back = Envelope::from_json(json.to_string().as_bytes()).expect("parses");
        assert_eq!(back, env);
    }

    #[test]
    fn edited_payload_or_type_is_a_bad_signature() {
        let signer = key(1);
        let mut env = signed("t", b"approve".to_vec(), &signer);
        env.payload = b"approvE".to_vec();
        assert!(matches!(
            env.verify_with(&signer.public()),
            Err(VerifyError::BadSignature { .. })
        ));
        let mut env = signed("t", b"approve".to_vec(), &signer);
        env.payload_type = "u".to_owned();
        assert!(matches!(
            env.verify_with(&signer.public()),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn other_key_is_not_signed_by() {
        let env = signed("t", b"x".to_vec(), &key(1));
        let err = env.verify_with(&key(2).public()).expect_err("other key");
        match err {
            VerifyError::NotSignedBy {
                key_id,
                found_key_ids,
            } => {
                assert_eq!(key_id, key(2).public().key_id());
                assert_eq!(found_key_ids, vec![key(1).public().key_id()]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn co_signed_envelope_verifies_for_each_signer() {
        let mut env = signed("t", b"x".to_vec(), &key(1));
        sign_with(&mut env, &key(2));
        env.verify_with(&key(1).public()).expect("first");
        env.verify_with(&key(2).public()).expect("second");
        assert!(env.verify_with(&key(3).public()).is_err());
    }

    #[test]
    fn malformed_truncated_and_huge_input_are_errors() {
        let good = signed("t", b"x".to_vec(), &key(1)).to_json_pretty();
        let truncated = &good[..good.len() / 2];
        let err = Envelope::from_json(truncated).expect_err("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            br#"{"payloadType":"t","payload":"%%%","signatures":[]}"#,
            br#"{"payloadType":"","payload":"","signatures":[]}"#,
            br#"{"payload":"","signatures":[]}"#,
        ] {
            assert!(
                matches!(
                    Envelope::from_json(bad),
                    Err(VerifyError::MalformedEnvelope { .. })
                ),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            Envelope::from_json(&huge),
            Err(VerifyError::EnvelopeTooLarge { .. })
        ));
    }
}
