//! Payment tokens: the sandbox gateway's client-side tokenization. The card number and CVC
//! live only in the caller's memory; what is stored is the token, brand, last four digits,
//! expiry and the sandbox's outcome for the card. With an Idempotency-Key a retry gets the same
//! token back instead of a second one.

use super::error::Result;
use super::idempotency::{self, Answer};
use crate::AppState;
use crate::gateway::outcome_for;
use ordo_domain::payment::CardNumber;
use ordo_store::{IdempotencyKey, Idempotent, Render, TokenRecord};
use serde::Serialize;
use std::sync::Arc;

/// What the app gets back: never the card number.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenBody {
    pub token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
}

fn body(t: &TokenRecord) -> String {
    let b = TokenBody {
        token: t.token.clone(),
        brand: t.brand.clone(),
        last4: t.last4.clone(),
        exp_month: t.exp_month,
        exp_year: t.exp_year,
    };
    serde_json::to_string(&b).unwrap_or_default()
}

/// A keyed digest of a card for the retry check: the same card gives the same digest, and
/// the digest cannot be turned back into the number without the tenant's secret (kept in the
/// database, made once at random). Never stored beside the number: only as a request hash.
pub async fn card_fingerprint(
    state: &AppState,
    caller: &crate::auth::Caller,
    number: &CardNumber,
    exp_month: i64,
    exp_year: i64,
) -> Result<String> {
    use hmac::Mac;
    let secret = state
        .store
        .meta_or_insert(
            caller.tenant(),
            "card_fingerprint_key",
            &format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        )
        .await?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| super::error::ServiceError::Internal(e.to_string()))?;
    mac.update(format!("{}|{exp_month}|{exp_year}", number.digits()).as_bytes());
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Tokenizes a validated card.
pub async fn tokenize(
    state: &AppState,
    caller: &crate::auth::Caller,
    number: CardNumber,
    exp_month: i64,
    exp_year: i64,
    key: Option<IdempotencyKey>,
) -> Result<Answer> {
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    let record = TokenRecord {
        token: format!("tok_{}", uuid::Uuid::new_v4().simple()),
        brand: number.brand().as_str().to_string(),
        last4: number.last4().to_string(),
        exp_month,
        exp_year,
        outcome: outcome_for(number.digits()).to_string(),
        order_id: None,
    };
    drop(number);
    let render: Render<TokenRecord> = Arc::new(|t| (201, body(t)));
    let hash = key
        .as_ref()
        .map(|k| k.request_hash.clone())
        .unwrap_or_default();
    match state
        .store
        .insert_payment_token(caller.tenant(), &record, key.map(|k| (k, render)))
        .await?
    {
        Idempotent::Done(t) => Ok(Answer {
            status: 201,
            body: body(&t),
            replayed: false,
        }),
        Idempotent::Replay(rec) => idempotency::settle(&rec, &hash),
    }
}
