//! Passkeys for shoppers: registering one (creation options carrying a one-time challenge, then
//! the authenticator's attestation), and the step-up a large order needs (above the tenant's
//! threshold a shopper's order waits for an assertion over a one-time challenge bound to the
//! order's amount). The WebAuthn checks themselves are `auth::webauthn`; this module decides who,
//! when, and consumes each challenge once. Nothing here knows HTTP.

use super::error::{Result, ServiceError};
use crate::AppState;
use crate::auth::webauthn::Refusal;
use crate::auth::{Caller, Role};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_domain::Money;
use ordo_store::{ChallengePurpose, ChallengeRecord, ChallengeUse, PasskeyRecord};
use serde_json::{Value, json};

/// How long a challenge can be answered (also the `timeout` the options give the client).
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// The relying party's name shown by authenticators.
const RP_NAME: &str = "Ordo";

/// A registration ceremony's answer, decoded from base64url at the API edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub challenge_id: String,
    pub credential_id: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

/// A step-up assertion (`navigator.credentials.get`), decoded at the API edge from the
/// `Passkey-Assertion` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyAssertion {
    pub challenge_id: String,
    pub credential_id: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    pub signature: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
}

/// A step-up challenge as the client receives it: its id and the WebAuthn request options.
#[derive(Debug, Clone, PartialEq)]
pub struct StepUpChallenge {
    pub id: String,
    pub options: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn shopper(caller: &Caller) -> Result<&str> {
    caller
        .principal
        .as_ref()
        .filter(|p| p.role == Role::Shopper)
        .map(|p| p.subject.as_str())
        .ok_or_else(|| {
            ServiceError::Internal(
                "a passkey ceremony without a shopper (the policy admits shoppers only)".into(),
            )
        })
}

/// Issues a fresh challenge of `purpose` to `subject` (bound to `amount` for a step-up).
async fn issue(
    state: &AppState,
    tenant: &str,
    subject: &str,
    purpose: ChallengePurpose,
    amount: Option<Money>,
) -> Result<ChallengeRecord> {
    let now = ordo_store::now_ms();
    let c = ChallengeRecord {
        id: format!("wch_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.to_string(),
        purpose,
        challenge: b64(&rand::random::<[u8; 32]>()),
        amount: amount.map(|m| m.amount),
        currency: amount.map(|m| m.currency.code().to_string()),
        created_at_ms: now,
        expires_at_ms: now + CHALLENGE_TTL_MS,
        used: false,
    };
    state.store.insert_challenge(tenant, &c).await?;
    Ok(c)
}

/// `PublicKeyCredentialCreationOptions` (WebAuthn's JSON form) for the calling shopper, with the
/// `challenge_id` to send back with the attestation.
pub async fn registration_options(state: &AppState, caller: &Caller) -> Result<Value> {
    let subject = shopper(caller)?;
    let tenant = caller.tenant();
    let (name, display_name) = match state.store.customer(tenant, subject).await? {
        Some((email, name)) => (email, name),
        None => (subject.to_string(), subject.to_string()),
    };
    let existing = state.store.passkeys(tenant, subject).await?;
    let c = issue(state, tenant, subject, ChallengePurpose::Registration, None).await?;
    Ok(json!({
        "challenge_id": c.id,
        "challenge": c.challenge,
        "rp": {"id": state.config.webauthn.id, "name": RP_NAME},
        "user": {"id": b64(subject.as_bytes()), "name": name, "displayName": display_name},
        "pubKeyCredParams": [{"type": "public-key", "alg": crate::auth::webauthn::ES256}],
        "timeout": CHALLENGE_TTL_MS,
        "attestation": "none",
        "authenticatorSelection": {"residentKey": "preferred", "userVerification": "required"},
        "excludeCredentials": existing.iter().map(|p| json!({"type": "public-key", "id": p.credential_id})).collect::<Vec<_>>(),
    }))
}

fn field(refusal: Refusal) -> ServiceError {
    ServiceError::field(refusal.part, "passkey_rejected", refusal.reason)
}

/// Verifies a registration against its challenge and stores the passkey (consuming the
/// challenge in the same commit). Answers the credential id.
pub async fn register(state: &AppState, caller: &Caller, r: Registration) -> Result<Value> {
    let subject = shopper(caller)?;
    let tenant = caller.tenant();
    let stale = || {
        ServiceError::field(
            "challenge_id",
            "challenge_invalid",
            "unknown, expired or used challenge: ask for new registration options",
        )
    };
    let now = ordo_store::now_ms();
    let challenge = state
        .store
        .challenge(tenant, &r.challenge_id)
        .await?
        .ok_or_else(stale)?;
    if challenge.subject != subject
        || challenge.purpose != ChallengePurpose::Registration
        || challenge.used
        || challenge.expires_at_ms <= now
    {
        return Err(stale());
    }
    if r.credential_id.is_empty() || r.credential_id.len() > 1023 {
        return Err(ServiceError::field(
            "credential_id",
            "invalid_length",
            "a credential id has 1 to 1023 bytes",
        ));
    }
    let new = state
        .config
        .webauthn
        .verify_registration(
            &challenge.challenge,
            &r.credential_id,
            &r.client_data_json,
            &r.attestation_object,
        )
        .map_err(field)?;
    let record = PasskeyRecord {
        credential_id: b64(&r.credential_id),
        subject: subject.to_string(),
        public_key: b64(&new.public_key),
        sign_count: new.sign_count as i64,
        created_at_ms: now,
    };
    match state
        .store
        .register_passkey(tenant, &challenge.id, now, &record)
        .await?
    {
        ChallengeUse::Accepted => {
            Ok(json!({"credential_id": record.credential_id, "created_at": super::rfc3339(now)}))
        }
        ChallengeUse::CredentialTaken => Err(ServiceError::field(
            "credential_id",
            "already_registered",
            "this passkey is registered already",
        )),
        ChallengeUse::Spent | ChallengeUse::CounterNotIncreased => Err(stale()),
    }
}

/// The step-up rule of checkout: a shopper's order whose total is above the tenant's threshold
/// proceeds only with a valid assertion over a step-up challenge issued for this total; without
/// one the answer is `StepUpRequired` (carrying a fresh challenge when the shopper has a
/// passkey). A valid assertion consumes its challenge; `Ok` means the order may proceed.
pub async fn check_step_up(
    state: &AppState,
    caller: &Caller,
    total: Money,
    assertion: Option<&PasskeyAssertion>,
) -> Result<()> {
    let Some(subject) = caller
        .principal
        .as_ref()
        .filter(|p| p.role == Role::Shopper)
        .map(|p| p.subject.as_str())
    else {
        return Ok(());
    };
    let tenant = caller.tenant();
    let Some(threshold) = state.store.step_up_threshold(tenant).await? else {
        return Ok(());
    };
    if total.amount <= threshold {
        return Ok(());
    }
    let Some(a) = assertion else {
        let passkeys = state.store.passkeys(tenant, subject).await?;
        if passkeys.is_empty() {
            return Err(ServiceError::StepUpRequired {
                detail: format!(
                    "orders above {} need a passkey confirmation, and you have no passkey: register one \
                     (POST /v1/auth/passkeys/registration-options, then POST /v1/auth/passkeys) and place the order again; nothing was placed",
                    Money::new(threshold, total.currency)
                ),
                challenge: None,
            });
        }
        let c = issue(
            state,
            tenant,
            subject,
            ChallengePurpose::StepUp,
            Some(total),
        )
        .await?;
        let options = json!({
            "challenge": c.challenge,
            "rpId": state.config.webauthn.id,
            "allowCredentials": passkeys.iter().map(|p| json!({"type": "public-key", "id": p.credential_id})).collect::<Vec<_>>(),
            "userVerification": "required",
            "timeout": CHALLENGE_TTL_MS,
        });
        return Err(ServiceError::StepUpRequired {
            detail: format!(
                "orders above {} need a passkey confirmation: sign `challenge` with one of your passkeys \
                 (navigator.credentials.get) and send the same request again with the Passkey-Assertion header; nothing was placed",
                Money::new(threshold, total.currency)
            ),
            challenge: Some(StepUpChallenge { id: c.id, options }),
        });
    };
    verify_step_up(state, tenant, subject, total, a).await
}

async fn verify_step_up(
    state: &AppState,
    tenant: &str,
    subject: &str,
    total: Money,
    a: &PasskeyAssertion,
) -> Result<()> {
    let failed = |why: &str| {
        ServiceError::StepUpFailed(format!(
            "{why}; nothing was placed: send the request without Passkey-Assertion for a new challenge"
        ))
    };
    let now = ordo_store::now_ms();
    let challenge = match state.store.challenge(tenant, &a.challenge_id).await? {
        Some(c) if c.subject == subject && c.purpose == ChallengePurpose::StepUp => c,
        _ => return Err(failed("unknown challenge_id")),
    };
    if challenge.used {
        return Err(failed("the challenge was used already"));
    }
    if challenge.expires_at_ms <= now {
        return Err(failed("the challenge expired"));
    }
    if challenge.amount != Some(total.amount)
        || challenge.currency.as_deref() != Some(total.currency.code())
    {
        return Err(failed(&format!(
            "the challenge was issued for another amount, not this order's {total}"
        )));
    }
    let credential_id = b64(&a.credential_id);
    let passkey = match state.store.passkey(tenant, &credential_id).await? {
        Some(p) if p.subject == subject => p,
        _ => return Err(failed("credential_id is not one of your passkeys")),
    };
    if a.user_handle
        .as_ref()
        .is_some_and(|h| h.as_slice() != subject.as_bytes())
    {
        return Err(failed("user_handle is not yours"));
    }
    let public_key = URL_SAFE_NO_PAD.decode(&passkey.public_key).map_err(|_| {
        ServiceError::Internal(format!(
            "passkey {credential_id}: stored public key is not base64url"
        ))
    })?;
    let count = state
        .config
        .webauthn
        .verify_assertion(
            &challenge.challenge,
            &public_key,
            &a.client_data_json,
            &a.authenticator_data,
            &a.signature,
        )
        .map_err(|r| failed(&r.to_string()))?;
    match state
        .store
        .consume_step_up(
            tenant,
            &challenge.id,
            subject,
            &credential_id,
            count as i64,
            now,
        )
        .await?
    {
        ChallengeUse::Accepted => Ok(()),
        ChallengeUse::CounterNotIncreased => Err(failed(
            "the passkey's signature counter did not increase (a cloned authenticator?)",
        )),
        ChallengeUse::Spent | ChallengeUse::CredentialTaken => {
            Err(failed("the challenge was used already"))
        }
    }
}
