//! `/v1/auth/passkeys`: a shopper registers a passkey (options, then the attestation), and the
//! `Passkey-Assertion` header of `POST /v1/orders` (a step-up answer) is parsed here into a
//! `services::passkeys::PasskeyAssertion`. Only base64url and JSON are decoded here; every
//! WebAuthn check is the service's.

use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::passkeys::{self, PasskeyAssertion, Registration};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_domain::FieldErrors;
use serde::Deserialize;
use serde_json::Value;

/// The header a step-up retry of `POST /v1/orders` carries.
pub const ASSERTION_HEADER: &str = "passkey-assertion";
/// Longest `Passkey-Assertion` accepted (an assertion is well under 2 KiB).
const ASSERTION_HEADER_LIMIT: usize = 8 << 10;

/// The attestation of `navigator.credentials.create`, binary fields in base64url.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    /// From the registration options.
    pub challenge_id: String,
    /// The credential's raw id.
    pub credential_id: String,
    /// `response.clientDataJSON`.
    pub client_data_json: String,
    /// `response.attestationObject`.
    pub attestation_object: String,
}

/// The JSON inside `Passkey-Assertion` (itself base64url-encoded): `navigator.credentials.get`'s
/// answer, binary fields in base64url.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertionInput {
    challenge_id: String,
    credential_id: String,
    client_data_json: String,
    authenticator_data: String,
    signature: String,
    #[serde(default)]
    user_handle: Option<String>,
}

/// Decodes a base64url field (padding tolerated), recording a field error when it is not.
fn bytes(errs: &mut FieldErrors, path: &str, v: &str) -> Vec<u8> {
    match URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')) {
        Ok(b) => b,
        Err(_) => {
            errs.add(path, "invalid_base64url", "expected base64url");
            vec![]
        }
    }
}

/// Creation options for a new passkey of the calling shopper (WebAuthn's
/// `PublicKeyCredentialCreationOptions` JSON, plus `challenge_id`). The challenge is good for
/// five minutes, once.
#[utoipa::path(post, path = "/v1/auth/passkeys/registration-options", tag = "auth",
    responses((status = 200, body = Object, description = "PublicKeyCredentialCreationOptions (challenge base64url, rp, user, pubKeyCredParams ES256, attestation none, timeout) and challenge_id",
                  example = json!({"challenge_id": "wch_0190…", "challenge": "q83v…", "rp": {"id": "localhost", "name": "Ordo"},
                                   "user": {"id": "Y3VzX2FuYQ", "name": "ana@example.com", "displayName": "Ana Lima"},
                                   "pubKeyCredParams": [{"type": "public-key", "alg": -7}], "timeout": 300000, "attestation": "none"})),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn registration_options(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(passkeys::registration_options(&state, &caller).await?))
}

/// Registers the passkey an authenticator created for the options' challenge (attestation
/// format `none`, ES256). Answers its credential id.
#[utoipa::path(post, path = "/v1/auth/passkeys", tag = "auth",
    request_body(content = RegistrationInput, example = json!({"challenge_id": "wch_0190…", "credential_id": "AbC…", "client_data_json": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIi…", "attestation_object": "o2NmbXRkbm9uZW…"})),
    responses((status = 201, body = Object, description = "registered", example = json!({"credential_id": "AbC…", "created_at": "2025-01-01T00:00:00.000Z"})),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "malformed JSON"),
              (status = 415, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "unknown, expired or used challenge; the attestation failed a check (see errors)"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<RegistrationInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut errs = FieldErrors::default();
    let registration = Registration {
        credential_id: bytes(&mut errs, "credential_id", &input.credential_id),
        client_data_json: bytes(&mut errs, "client_data_json", &input.client_data_json),
        attestation_object: bytes(&mut errs, "attestation_object", &input.attestation_object),
        challenge_id: input.challenge_id,
    };
    errs.into_result()?;
    Ok((
        StatusCode::CREATED,
        Json(passkeys::register(&state, &caller, registration).await?),
    ))
}

fn unparsable(detail: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        kind: "passkey-assertion-invalid",
        title: "Unparsable Passkey-Assertion",
        detail: detail.into(),
    }
}

/// The `Passkey-Assertion` header: base64url of the JSON `{challenge_id, credential_id,
/// client_data_json, authenticator_data, signature, user_handle?}`. Absent: `None`; present but
/// unparsable: 400.
pub(crate) fn assertion_header(headers: &HeaderMap) -> Result<Option<PasskeyAssertion>, ApiError> {
    let mut values = headers.get_all(ASSERTION_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(unparsable("send one Passkey-Assertion header"));
    }
    if value.len() > ASSERTION_HEADER_LIMIT {
        return Err(unparsable(format!(
            "Passkey-Assertion is longer than {ASSERTION_HEADER_LIMIT} bytes"
        )));
    }
    let expected = "Passkey-Assertion is base64url of the JSON {challenge_id, credential_id, client_data_json, authenticator_data, signature, user_handle?}";
    let raw = value
        .to_str()
        .map_err(|_| unparsable(expected))?
        .trim()
        .trim_end_matches('=');
    let json = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| unparsable(expected))?;
    let input: AssertionInput =
        serde_json::from_slice(&json).map_err(|e| unparsable(format!("{expected}: {e}")))?;
    let mut errs = FieldErrors::default();
    let assertion = PasskeyAssertion {
        credential_id: bytes(&mut errs, "credential_id", &input.credential_id),
        client_data_json: bytes(&mut errs, "client_data_json", &input.client_data_json),
        authenticator_data: bytes(&mut errs, "authenticator_data", &input.authenticator_data),
        signature: bytes(&mut errs, "signature", &input.signature),
        user_handle: input
            .user_handle
            .as_deref()
            .map(|h| bytes(&mut errs, "user_handle", h)),
        challenge_id: input.challenge_id,
    };
    if let Err(e) = errs.into_result() {
        let paths: Vec<String> = e.0.iter().map(|f| f.path.clone()).collect();
        return Err(unparsable(format!(
            "{expected}; not base64url: {}",
            paths.join(", ")
        )));
    }
    Ok(Some(assertion))
}
