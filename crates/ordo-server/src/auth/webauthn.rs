//! The WebAuthn relying party's checks for passkeys, pure (no I/O, no storage): a registration's
//! clientDataJSON and attestation object (format `none`, an ES256 key), and an assertion's
//! clientDataJSON, authenticator data and signature. Only P-256 keys (COSE alg -7) are accepted;
//! user presence and user verification are always required. Challenges, counters and who owns
//! which credential are the caller's business (`services::passkeys`).

use ciborium::Value;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// COSE algorithm ES256 (ECDSA over P-256 with SHA-256), the only one offered and accepted.
pub const ES256: i64 = -7;

const FLAG_USER_PRESENT: u8 = 0x01;
const FLAG_USER_VERIFIED: u8 = 0x04;
const FLAG_ATTESTED_CREDENTIAL: u8 = 0x40;

/// Who Ordo is to authenticators: the RP ID (a domain; credentials are scoped to it) and the
/// origins allowed to run ceremonies (web origins like `https://shop.example.com`, and app
/// origins like `android:apk-key-hash:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origins: Vec<String>,
}

/// Why a ceremony's response was refused, and which part of it (`client_data_json`,
/// `attestation_object`, `authenticator_data`, `signature`, `credential_id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {reason}")]
pub struct Refusal {
    pub part: &'static str,
    pub reason: String,
}

fn refuse(part: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        part,
        reason: reason.into(),
    }
}

/// A verified registration: the credential's public key (SEC1 uncompressed) and its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    pub public_key: Vec<u8>,
    pub sign_count: u32,
}

/// The fixed part of authenticator data; `rest` holds attested credential data and extensions.
struct AuthenticatorData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    sign_count: u32,
    rest: &'a [u8],
}

fn authenticator_data<'a>(
    bytes: &'a [u8],
    part: &'static str,
) -> Result<AuthenticatorData<'a>, Refusal> {
    if bytes.len() < 37 {
        return Err(refuse(part, "authenticator data is shorter than 37 bytes"));
    }
    Ok(AuthenticatorData {
        rp_id_hash: &bytes[..32],
        flags: bytes[32],
        sign_count: u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]),
        rest: &bytes[37..],
    })
}

#[derive(serde::Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

impl RelyingParty {
    /// SHA-256 of the RP ID, as authenticators put it in authenticator data.
    fn id_hash(&self) -> [u8; 32] {
        Sha256::digest(self.id.as_bytes()).into()
    }

    /// clientDataJSON names this ceremony, this challenge and an allowed origin.
    fn check_client_data(&self, json: &[u8], kind: &str, challenge: &str) -> Result<(), Refusal> {
        const PART: &str = "client_data_json";
        let c: ClientData = serde_json::from_slice(json)
            .map_err(|e| refuse(PART, format!("not the JSON of collected client data: {e}")))?;
        if c.kind != kind {
            return Err(refuse(
                PART,
                format!("type is {:?}, expected {kind:?}", c.kind),
            ));
        }
        if c.challenge != challenge {
            return Err(refuse(PART, "the challenge is not the one issued"));
        }
        if !self.origins.iter().any(|o| *o == c.origin) {
            return Err(refuse(
                PART,
                format!("origin {:?} is not an allowed origin", c.origin),
            ));
        }
        if c.cross_origin == Some(true) {
            return Err(refuse(PART, "cross-origin ceremonies are not accepted"));
        }
        Ok(())
    }

    /// The authenticator data is for this RP, with the user present and verified.
    fn check_authenticator_data(
        &self,
        data: &AuthenticatorData<'_>,
        part: &'static str,
    ) -> Result<(), Refusal> {
        if data.rp_id_hash != self.id_hash() {
            return Err(refuse(
                part,
                format!("the RP ID hash is not that of {:?}", self.id),
            ));
        }
        if data.flags & FLAG_USER_PRESENT == 0 {
            return Err(refuse(part, "the user was not present (UP flag clear)"));
        }
        if data.flags & FLAG_USER_VERIFIED == 0 {
            return Err(refuse(part, "the user was not verified (UV flag clear)"));
        }
        Ok(())
    }

    /// Verifies a registration (`navigator.credentials.create`) answering `challenge` (base64url,
    /// as issued): type `webauthn.create`, challenge, origin, RP ID hash, UP and UV, attestation
    /// format `none`, and an attested ES256 credential whose id is `credential_id`.
    pub fn verify_registration(
        &self,
        challenge: &str,
        credential_id: &[u8],
        client_data_json: &[u8],
        attestation_object: &[u8],
    ) -> Result<NewPasskey, Refusal> {
        const PART: &str = "attestation_object";
        self.check_client_data(client_data_json, "webauthn.create", challenge)?;
        let object: Value = ciborium::from_reader(attestation_object)
            .map_err(|e| refuse(PART, format!("not CBOR: {e}")))?;
        let Value::Map(object) = object else {
            return Err(refuse(PART, "not a CBOR map"));
        };
        let text = |key: &str| {
            object
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v)
        };
        match text("fmt").and_then(Value::as_text) {
            Some("none") => {}
            Some(other) => {
                return Err(refuse(
                    PART,
                    format!("attestation format {other:?}; only \"none\" is accepted"),
                ));
            }
            None => return Err(refuse(PART, "no attestation format (fmt)")),
        }
        if !text("attStmt")
            .and_then(Value::as_map)
            .is_some_and(|m| m.is_empty())
        {
            return Err(refuse(PART, "format \"none\" needs an empty attStmt"));
        }
        let auth = text("authData")
            .and_then(Value::as_bytes)
            .ok_or_else(|| refuse(PART, "no authData"))?;
        let data = authenticator_data(auth, PART)?;
        self.check_authenticator_data(&data, PART)?;
        if data.flags & FLAG_ATTESTED_CREDENTIAL == 0 {
            return Err(refuse(PART, "no attested credential data (AT flag clear)"));
        }
        // aaguid (16) | credential id length (2, big-endian) | credential id | COSE key
        let rest = data.rest;
        if rest.len() < 18 {
            return Err(refuse(PART, "attested credential data is cut short"));
        }
        let id_len = u16::from_be_bytes([rest[16], rest[17]]) as usize;
        let id = rest
            .get(18..18 + id_len)
            .ok_or_else(|| refuse(PART, "the credential id is cut short"))?;
        if id != credential_id {
            return Err(refuse(
                "credential_id",
                "differs from the credential id in the attestation",
            ));
        }
        let mut key_bytes = &rest[18 + id_len..];
        let key: Value = ciborium::from_reader(&mut key_bytes)
            .map_err(|e| refuse(PART, format!("the credential public key is not CBOR: {e}")))?;
        let public_key = es256_public_key(&key).map_err(|why| refuse(PART, why))?;
        Ok(NewPasskey {
            public_key,
            sign_count: data.sign_count,
        })
    }

    /// Verifies an assertion (`navigator.credentials.get`) answering `challenge` with the passkey
    /// whose SEC1 public key is `public_key`: type `webauthn.get`, challenge, origin, RP ID hash,
    /// UP and UV, and the ES256 signature over authenticatorData ‖ SHA-256(clientDataJSON).
    /// Returns the authenticator's signature counter (the caller checks that it increased).
    pub fn verify_assertion(
        &self,
        challenge: &str,
        public_key: &[u8],
        client_data_json: &[u8],
        authenticator_data_bytes: &[u8],
        signature: &[u8],
    ) -> Result<u32, Refusal> {
        const PART: &str = "authenticator_data";
        self.check_client_data(client_data_json, "webauthn.get", challenge)?;
        let data = authenticator_data(authenticator_data_bytes, PART)?;
        self.check_authenticator_data(&data, PART)?;
        let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| {
            refuse(
                "credential_id",
                "the stored public key is not a P-256 point",
            )
        })?;
        let sig = Signature::from_der(signature)
            .map_err(|_| refuse("signature", "not a DER-encoded ECDSA signature"))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut signed = authenticator_data_bytes.to_vec();
        signed.extend_from_slice(&Sha256::digest(client_data_json));
        key.verify(&signed, &sig).map_err(|_| {
            refuse(
                "signature",
                "the signature does not verify with the passkey's public key",
            )
        })?;
        Ok(data.sign_count)
    }
}

/// The SEC1 uncompressed point of a COSE_Key that is EC2 (kty 2), ES256 (alg -7), P-256 (crv 1).
fn es256_public_key(key: &Value) -> Result<Vec<u8>, String> {
    let map = key
        .as_map()
        .ok_or("the credential public key is not a COSE_Key map")?;
    let get = |label: i64| {
        map.iter()
            .find(|(k, _)| k.as_integer().map(i128::from) == Some(label as i128))
            .map(|(_, v)| v)
    };
    let int = |label: i64| get(label).and_then(Value::as_integer).map(i128::from);
    if int(1) != Some(2) {
        return Err("the credential public key is not an EC2 key (kty 2)".into());
    }
    if int(3) != Some(ES256 as i128) {
        return Err("the credential public key is not ES256 (alg -7)".into());
    }
    if int(-1) != Some(1) {
        return Err("the credential public key is not on P-256 (crv 1)".into());
    }
    let coordinate = |label: i64, name: &str| -> Result<&[u8], String> {
        get(label)
            .and_then(Value::as_bytes)
            .map(Vec::as_slice)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| format!("the credential public key's {name} is not 32 bytes"))
    };
    let mut point = vec![0x04];
    point.extend_from_slice(coordinate(-2, "x")?);
    point.extend_from_slice(coordinate(-3, "y")?);
    VerifyingKey::from_sec1_bytes(&point)
        .map_err(|_| "the credential public key is not a point on P-256".to_string())?;
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "localhost".into(),
            origins: vec!["http://localhost:8080".into()],
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&Sha256::digest(b"webauthn unit test key")).unwrap()
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::json!({"type": kind, "challenge": challenge, "origin": origin})
            .to_string()
            .into_bytes()
    }

    fn auth_data(
        rp_id: &str,
        flags: u8,
        count: u32,
        attested: Option<(&[u8], &SigningKey)>,
    ) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&count.to_be_bytes());
        if let Some((id, key)) = attested {
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id);
            let point = key.verifying_key().to_encoded_point(false);
            let cose = Value::Map(vec![
                (Value::Integer(1.into()), Value::Integer(2.into())),
                (Value::Integer(3.into()), Value::Integer((-7).into())),
                (Value::Integer((-1).into()), Value::Integer(1.into())),
                (
                    Value::Integer((-2).into()),
                    Value::Bytes(point.x().unwrap().to_vec()),
                ),
                (
                    Value::Integer((-3).into()),
                    Value::Bytes(point.y().unwrap().to_vec()),
                ),
            ]);
            ciborium::into_writer(&cose, &mut out).unwrap();
        }
        out
    }

    fn attestation(auth: Vec<u8>, fmt: &str) -> Vec<u8> {
        let object = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text(fmt.into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth)),
        ]);
        let mut out = vec![];
        ciborium::into_writer(&object, &mut out).unwrap();
        out
    }

    #[test]
    fn a_registration_yields_the_attested_key_and_a_bad_one_names_its_fault() {
        let (challenge, id) = (URL_SAFE_NO_PAD.encode([7u8; 32]), b"cred-1".as_slice());
        let good_client = client_data("webauthn.create", &challenge, "http://localhost:8080");
        let good_auth = auth_data("localhost", 0x45, 0, Some((id, &key())));
        let pk = rp()
            .verify_registration(
                &challenge,
                id,
                &good_client,
                &attestation(good_auth.clone(), "none"),
            )
            .unwrap();
        assert_eq!(
            pk.public_key,
            key().verifying_key().to_encoded_point(false).as_bytes()
        );
        let cases: Vec<(&str, Vec<u8>, Vec<u8>, &[u8])> = vec![
            (
                "type",
                client_data("webauthn.get", &challenge, "http://localhost:8080"),
                attestation(good_auth.clone(), "none"),
                id,
            ),
            (
                "challenge",
                client_data("webauthn.create", "other", "http://localhost:8080"),
                attestation(good_auth.clone(), "none"),
                id,
            ),
            (
                "origin",
                client_data("webauthn.create", &challenge, "https://evil.example"),
                attestation(good_auth.clone(), "none"),
                id,
            ),
            (
                "RP ID",
                good_client.clone(),
                attestation(
                    auth_data("evil.example", 0x45, 0, Some((id, &key()))),
                    "none",
                ),
                id,
            ),
            (
                "UV",
                good_client.clone(),
                attestation(auth_data("localhost", 0x41, 0, Some((id, &key()))), "none"),
                id,
            ),
            (
                "format",
                good_client.clone(),
                attestation(good_auth.clone(), "packed"),
                id,
            ),
            (
                "credential id",
                good_client.clone(),
                attestation(good_auth.clone(), "none"),
                b"other".as_slice(),
            ),
            ("not CBOR", good_client.clone(), b"garbage".to_vec(), id),
        ];
        for (what, client, object, id) in cases {
            assert!(
                rp().verify_registration(&challenge, id, &client, &object)
                    .is_err(),
                "{what}"
            );
        }
    }

    #[test]
    fn an_assertion_verifies_only_with_the_right_key_over_the_right_bytes() {
        let challenge = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let public = key()
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let client = client_data("webauthn.get", &challenge, "http://localhost:8080");
        let auth = auth_data("localhost", 0x05, 3, None);
        let sign = |k: &SigningKey, auth: &[u8], client: &[u8]| -> Vec<u8> {
            let mut m = auth.to_vec();
            m.extend_from_slice(&Sha256::digest(client));
            let s: Signature = k.sign(&m);
            s.to_der().as_bytes().to_vec()
        };
        assert_eq!(
            rp().verify_assertion(
                &challenge,
                &public,
                &client,
                &auth,
                &sign(&key(), &auth, &client)
            ),
            Ok(3)
        );
        let other = SigningKey::from_bytes(&Sha256::digest(b"another key")).unwrap();
        assert_eq!(
            rp().verify_assertion(
                &challenge,
                &public,
                &client,
                &auth,
                &sign(&other, &auth, &client)
            )
            .unwrap_err()
            .part,
            "signature"
        );
        let tampered = auth_data("localhost", 0x05, 4, None);
        assert!(
            rp().verify_assertion(
                &challenge,
                &public,
                &client,
                &tampered,
                &sign(&key(), &auth, &client)
            )
            .is_err()
        );
        let no_uv = auth_data("localhost", 0x01, 3, None);
        assert!(
            rp().verify_assertion(
                &challenge,
                &public,
                &client,
                &no_uv,
                &sign(&key(), &no_uv, &client)
            )
            .is_err()
        );
        assert!(
            rp().verify_assertion(&challenge, &public, &client, &auth, b"\x30\x00")
                .is_err()
        );
        assert!(
            rp().verify_assertion(&challenge, &public, &client, &auth[..20], b"")
                .is_err()
        );
    }
}
