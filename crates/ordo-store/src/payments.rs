//! Payment tokens issued by the sandbox gateway: token, brand, last four digits, expiry and the
//! sandbox outcome. Never a card number or CVC. A token pays for at most one order.

use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::sql::Sql;
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    /// `approve`, `decline` or `insufficient_funds` (the sandbox's decision for this card).
    pub outcome: String,
    /// The order this token paid for, once used.
    pub order_id: Option<String>,
}

impl Store {
    /// Stores a new token (idempotently, when given a key and how to render the answer).
    pub async fn insert_payment_token(
        &self,
        tenant: &str,
        t: &TokenRecord,
        key: Option<(IdempotencyKey, Render<TokenRecord>)>,
    ) -> Result<Idempotent<TokenRecord>> {
        let (tenant_id, t) = (tenant.to_string(), t.clone());
        self.idempotent(tenant, key, move |tx| {
            let (tenant_id, t) = (tenant_id.clone(), t.clone());
            Box::pin(async move {
                tx.exec(
                    "INSERT INTO payment_tokens (tenant_id, token, brand, last4, exp_month, exp_year, outcome, created_at_ms, order_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
                    vec![
                        tenant_id.as_str().into(),
                        (&t.token).into(),
                        (&t.brand).into(),
                        (&t.last4).into(),
                        t.exp_month.into(),
                        t.exp_year.into(),
                        (&t.outcome).into(),
                        crate::now_ms().into(),
                    ],
                )
                .await?;
                Ok((t, true))
            })
        })
        .await
    }

    pub async fn payment_token(&self, tenant: &str, token: &str) -> Result<Option<TokenRecord>> {
        let rows = self
            .read_rows(tenant,
                "SELECT token, brand, last4, exp_month, exp_year, outcome, order_id FROM payment_tokens WHERE tenant_id = $1 AND token = $2",
                vec![tenant.into(), token.into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(TokenRecord {
                    token: r[0].text()?,
                    brand: r[1].text()?,
                    last4: r[2].text()?,
                    exp_month: r[3].int()?,
                    exp_year: r[4].int()?,
                    outcome: r[5].text()?,
                    order_id: r[6].opt_text()?,
                })
            })
            .transpose()
    }
}
