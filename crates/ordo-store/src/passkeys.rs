//! Passkey records: shoppers' WebAuthn credentials (public keys and signature counters), the
//! one-time challenges of registration and step-up ceremonies, and the per-tenant step-up
//! threshold. A challenge is consumed at most once, even by concurrent requests (a conditional
//! `UPDATE … WHERE used_at_ms IS NULL`); verifying signatures is the server's `auth::webauthn`,
//! not this module's.

use crate::sql::{Sql, Val};
use crate::{Result, Store, corrupt};

/// What a challenge was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    Registration,
    StepUp,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::Registration => "registration",
            ChallengePurpose::StepUp => "step_up",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "registration" => Ok(ChallengePurpose::Registration),
            "step_up" => Ok(ChallengePurpose::StepUp),
            other => Err(corrupt(format!("unknown challenge purpose {other}"))),
        }
    }
}

/// A WebAuthn challenge as stored. Bytes are kept as base64url text on both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub id: String,
    /// The principal it was issued to.
    pub subject: String,
    pub purpose: ChallengePurpose,
    /// The random challenge, base64url without padding (as it appears in clientDataJSON).
    pub challenge: String,
    /// For step-up: the order amount (minor units) and currency it authorizes.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub used: bool,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub subject: String,
    /// The P-256 public key, SEC1 uncompressed, base64url without padding.
    pub public_key: String,
    pub sign_count: i64,
    pub created_at_ms: i64,
}

/// What consuming a challenge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeUse {
    /// Consumed now, and the accompanying write (credential stored, counter advanced) stands.
    Accepted,
    /// Already used, expired or unknown: nothing changed.
    Spent,
    /// Registration: the credential id is registered already (nothing changed).
    CredentialTaken,
    /// Step-up: the signature counter did not increase (a cloned authenticator?); nothing changed.
    CounterNotIncreased,
}

const CHALLENGE_COLUMNS: &str =
    "id, subject, purpose, challenge, amount, currency, created_at_ms, expires_at_ms, used_at_ms";
const PASSKEY_COLUMNS: &str = "credential_id, subject, public_key, sign_count, created_at_ms";

fn challenge_row(r: &[Val]) -> Result<ChallengeRecord> {
    Ok(ChallengeRecord {
        id: r[0].text()?,
        subject: r[1].text()?,
        purpose: ChallengePurpose::parse(&r[2].text()?)?,
        challenge: r[3].text()?,
        amount: opt_int(&r[4])?,
        currency: r[5].opt_text()?,
        created_at_ms: r[6].int()?,
        expires_at_ms: r[7].int()?,
        used: opt_int(&r[8])?.is_some(),
    })
}

fn passkey_row(r: &[Val]) -> Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        credential_id: r[0].text()?,
        subject: r[1].text()?,
        public_key: r[2].text()?,
        sign_count: r[3].int()?,
        created_at_ms: r[4].int()?,
    })
}

fn opt_int(v: &Val) -> Result<Option<i64>> {
    match v {
        Val::NullInt | Val::NullText => Ok(None),
        other => other.int().map(Some),
    }
}

/// Marks the challenge used if it is live and of this subject and purpose; whether it did.
async fn consume(
    tx: &mut crate::Tx<'_>,
    tenant: &str,
    id: &str,
    subject: &str,
    purpose: ChallengePurpose,
    now_ms: i64,
) -> Result<bool> {
    let rows = tx
        .rows(
            "UPDATE webauthn_challenges SET used_at_ms = $5 WHERE tenant_id = $1 AND id = $2 AND subject = $3 AND purpose = $4 \
             AND used_at_ms IS NULL AND expires_at_ms > $5 RETURNING id",
            vec![tenant.into(), id.into(), subject.into(), purpose.as_str().into(), now_ms.into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

impl Store {
    /// Stores a new challenge, and forgets the subject's expired ones in the same commit (so
    /// challenges never pile up).
    pub async fn insert_challenge(&self, tenant: &str, c: &ChallengeRecord) -> Result<()> {
        let scope = tenant.to_string();
        let (tenant, c) = (tenant.to_string(), c.clone());
        self.unit(&scope, move |tx| {
            let (tenant, c) = (tenant.clone(), c.clone());
            Box::pin(async move {
                tx.exec(
                    "DELETE FROM webauthn_challenges WHERE tenant_id = $1 AND subject = $2 AND expires_at_ms <= $3",
                    vec![tenant.as_str().into(), c.subject.as_str().into(), c.created_at_ms.into()],
                )
                .await?;
                tx.exec(
                    "INSERT INTO webauthn_challenges (tenant_id, id, subject, purpose, challenge, amount, currency, created_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    vec![
                        tenant.as_str().into(),
                        c.id.as_str().into(),
                        c.subject.as_str().into(),
                        c.purpose.as_str().into(),
                        c.challenge.as_str().into(),
                        c.amount.into(),
                        c.currency.as_deref().into(),
                        c.created_at_ms.into(),
                        c.expires_at_ms.into(),
                    ],
                )
                .await?;
                Ok(((), true))
            })
        })
        .await?;
        Ok(())
    }

    pub async fn challenge(&self, tenant: &str, id: &str) -> Result<Option<ChallengeRecord>> {
        let rows = self
            .read_rows(tenant, &format!("SELECT {CHALLENGE_COLUMNS} FROM webauthn_challenges WHERE tenant_id = $1 AND id = $2"), vec![tenant.into(), id.into()])
            .await?;
        rows.first().map(|r| challenge_row(r)).transpose()
    }

    /// The passkeys of `subject`, oldest first.
    pub async fn passkeys(&self, tenant: &str, subject: &str) -> Result<Vec<PasskeyRecord>> {
        let rows = self
            .read_rows(tenant,
                &format!("SELECT {PASSKEY_COLUMNS} FROM passkey_credentials WHERE tenant_id = $1 AND subject = $2 ORDER BY created_at_ms, credential_id"),
                vec![tenant.into(), subject.into()],
            )
            .await?;
        rows.iter().map(|r| passkey_row(r)).collect()
    }

    pub async fn passkey(
        &self,
        tenant: &str,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>> {
        let rows = self
            .read_rows(tenant, &format!("SELECT {PASSKEY_COLUMNS} FROM passkey_credentials WHERE tenant_id = $1 AND credential_id = $2"), vec![tenant.into(), credential_id.into()])
            .await?;
        rows.first().map(|r| passkey_row(r)).transpose()
    }

    /// Consumes the registration challenge `challenge_id` of `passkey.subject` and stores the
    /// passkey, in one commit: both happen or neither.
    pub async fn register_passkey(
        &self,
        tenant: &str,
        challenge_id: &str,
        now_ms: i64,
        passkey: &PasskeyRecord,
    ) -> Result<ChallengeUse> {
        let scope = tenant.to_string();
        let (tenant, challenge_id, p) = (
            tenant.to_string(),
            challenge_id.to_string(),
            passkey.clone(),
        );
        let (outcome, _) = self
            .unit(&scope, move |tx| {
                let (tenant, challenge_id, p) = (tenant.clone(), challenge_id.clone(), p.clone());
                Box::pin(async move {
                    if !consume(tx, &tenant, &challenge_id, &p.subject, ChallengePurpose::Registration, now_ms).await? {
                        return Ok((ChallengeUse::Spent, false));
                    }
                    let inserted = tx
                        .rows(
                            "INSERT INTO passkey_credentials (tenant_id, credential_id, subject, public_key, sign_count, created_at_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, credential_id) DO NOTHING RETURNING credential_id",
                            vec![
                                tenant.as_str().into(),
                                p.credential_id.as_str().into(),
                                p.subject.as_str().into(),
                                p.public_key.as_str().into(),
                                p.sign_count.into(),
                                p.created_at_ms.into(),
                            ],
                        )
                        .await?;
                    if inserted.is_empty() {
                        return Ok((ChallengeUse::CredentialTaken, false));
                    }
                    Ok((ChallengeUse::Accepted, true))
                })
            })
            .await?;
        Ok(outcome)
    }

    /// Consumes the step-up challenge `challenge_id` of `subject` and records `sign_count` as the
    /// passkey's new counter, in one commit. The counter must increase (unless the authenticator
    /// keeps none: both zero); otherwise nothing changes.
    pub async fn consume_step_up(
        &self,
        tenant: &str,
        challenge_id: &str,
        subject: &str,
        credential_id: &str,
        sign_count: i64,
        now_ms: i64,
    ) -> Result<ChallengeUse> {
        let args = (
            tenant.to_string(),
            challenge_id.to_string(),
            subject.to_string(),
            credential_id.to_string(),
        );
        let (outcome, _) = self
            .unit(tenant, move |tx| {
                let (tenant, challenge_id, subject, credential_id) = args.clone();
                Box::pin(async move {
                    if !consume(tx, &tenant, &challenge_id, &subject, ChallengePurpose::StepUp, now_ms).await? {
                        return Ok((ChallengeUse::Spent, false));
                    }
                    let advanced = tx
                        .rows(
                            "UPDATE passkey_credentials SET sign_count = $4 WHERE tenant_id = $1 AND credential_id = $2 AND subject = $3 \
                             AND (sign_count < $4 OR (sign_count = 0 AND $4 = 0)) RETURNING credential_id",
                            vec![tenant.as_str().into(), credential_id.as_str().into(), subject.as_str().into(), sign_count.into()],
                        )
                        .await?;
                    if advanced.is_empty() {
                        return Ok((ChallengeUse::CounterNotIncreased, false));
                    }
                    Ok((ChallengeUse::Accepted, true))
                })
            })
            .await?;
        Ok(outcome)
    }

    /// The order total (minor units) above which a shopper must confirm with a passkey; `None`:
    /// never.
    pub async fn step_up_threshold(&self, tenant: &str) -> Result<Option<i64>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT step_up_threshold FROM tenant_settings WHERE tenant_id = $1",
                vec![tenant.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => opt_int(&r[0]),
            None => Ok(None),
        }
    }

    pub async fn set_step_up_threshold(&self, tenant: &str, threshold: Option<i64>) -> Result<()> {
        self.write_rows(
            tenant,
            "INSERT INTO tenant_settings (tenant_id, step_up_threshold) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET step_up_threshold = excluded.step_up_threshold",
            vec![tenant.into(), threshold.into()],
        )
        .await?;
        Ok(())
    }
}
