//! Webhook subscriptions and their deliveries.
//!
//! A subscription follows its tenant's event log from `cursor`: the dispatcher copies each new
//! event it admits into a `pending` delivery (with the CloudEvent's body, so a delivery can be
//! replayed after the log was pruned) and moves the cursor, in one commit. A delivery is
//! `pending` (due at `next_attempt_at_ms`), `delivered` or `dead`; every attempt is kept.

use crate::idempotency::{Idempotent, Render};
use crate::sql::{Sql, Val};
use crate::{ALL_TENANTS, IdempotencyKey, Result, Store, corrupt, now_ms};

/// A subscription.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WebhookRecord {
    pub tenant: String,
    pub id: String,
    pub url: String,
    /// Event types, or `["*"]`.
    pub events: Vec<String>,
    pub secret: String,
    pub created_at_ms: i64,
    /// The last log position fanned out into deliveries.
    pub cursor: i64,
    pub consecutive_failures: i64,
    /// The circuit breaker is open (no attempts) until then.
    pub open_until_ms: i64,
}

const WEBHOOK: &str = "tenant_id, id, url, events, secret, created_at_ms, cursor, consecutive_failures, open_until_ms";

fn webhook_from(r: &[Val]) -> Result<WebhookRecord> {
    Ok(WebhookRecord {
        tenant: r[0].text()?,
        id: r[1].text()?,
        url: r[2].text()?,
        events: serde_json::from_str(&r[3].text()?).map_err(corrupt)?,
        secret: r[4].text()?,
        created_at_ms: r[5].int()?,
        cursor: r[6].int()?,
        consecutive_failures: r[7].int()?,
        open_until_ms: r[8].int()?,
    })
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub position: i64,
    pub event_id: String,
    pub event_type: String,
    pub subject: String,
    /// The CloudEvent as sent (JSON).
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Retries stop 24 h after this: the delivery's creation, or its last replay.
    pub window_start_ms: i64,
}

const DELIVERY: &str = "id, webhook_id, position, event_id, event_type, subject, body, status, attempts, next_attempt_at_ms, created_at_ms, finished_at_ms, window_start_ms";

fn delivery_from(r: &[Val]) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r[0].text()?,
        webhook_id: r[1].text()?,
        position: r[2].int()?,
        event_id: r[3].text()?,
        event_type: r[4].text()?,
        subject: r[5].text()?,
        body: r[6].text()?,
        status: r[7].text()?,
        attempts: r[8].int()?,
        next_attempt_at_ms: r[9].int()?,
        created_at_ms: r[10].int()?,
        finished_at_ms: r[11].opt_int()?,
        window_start_ms: r[12].int()?,
    })
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttemptRecord {
    pub attempt: i64,
    pub at_ms: i64,
    /// The HTTP status the endpoint answered (none: no answer — refused, timed out, …).
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What an attempt came to, to record.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub delivery_id: String,
    pub attempt: AttemptRecord,
    pub delivered: bool,
    /// When to try again (`None` with `delivered == false`: give up, a dead letter).
    pub retry_at_ms: Option<i64>,
}

/// A new delivery: (position, event id, type, subject, body).
pub type NewDelivery = (i64, String, String, String, String);

impl Store {
    /// Creates a subscription that receives events entering the log from now on.
    pub async fn create_webhook(
        &self,
        tenant: &str,
        id: &str,
        url: &str,
        events: &[String],
        secret: &str,
        key: Option<(IdempotencyKey, Render<WebhookRecord>)>,
    ) -> Result<Idempotent<WebhookRecord>> {
        let (t, id, url, secret) = (
            tenant.to_string(),
            id.to_string(),
            url.to_string(),
            secret.to_string(),
        );
        let events_json = serde_json::to_string(events).map_err(corrupt)?;
        self.idempotent(tenant, key, move |tx| {
            let (t, id, url, secret, events_json) = (
                t.clone(),
                id.clone(),
                url.clone(),
                secret.clone(),
                events_json.clone(),
            );
            Box::pin(async move {
                let now = now_ms();
                let rows = tx
                    .rows(
                        &format!(
                            "INSERT INTO webhooks (tenant_id, id, url, events, secret, created_at_ms, cursor) \
                             VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(position), 0) FROM outbox WHERE tenant_id = $1)) \
                             RETURNING {WEBHOOK}"
                        ),
                        vec![
                            t.as_str().into(),
                            id.as_str().into(),
                            url.as_str().into(),
                            events_json.as_str().into(),
                            secret.as_str().into(),
                            now.into(),
                        ],
                    )
                    .await?;
                let row = rows
                    .first()
                    .ok_or_else(|| corrupt("webhook insert returned no row"))?;
                Ok((webhook_from(row)?, true))
            })
        })
        .await
    }

    pub async fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookRecord>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {WEBHOOK} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at_ms, id"
                ),
                vec![tenant.into()],
            )
            .await?;
        rows.iter().map(|r| webhook_from(r)).collect()
    }

    pub async fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookRecord>> {
        let rows = self
            .read_rows(
                tenant,
                &format!("SELECT {WEBHOOK} FROM webhooks WHERE tenant_id = $1 AND id = $2"),
                vec![tenant.into(), id.into()],
            )
            .await?;
        rows.first().map(|r| webhook_from(r)).transpose()
    }

    /// Every subscription of every tenant (the dispatcher).
    pub async fn all_webhooks(&self) -> Result<Vec<WebhookRecord>> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                &format!("SELECT {WEBHOOK} FROM webhooks ORDER BY tenant_id, id"),
                vec![],
            )
            .await?;
        rows.iter().map(|r| webhook_from(r)).collect()
    }

    /// Deletes a subscription with its deliveries and their attempts; whether it existed.
    pub async fn delete_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        let (t, id) = (tenant.to_string(), id.to_string());
        let (gone, _) = self
            .unit(tenant, move |tx| {
                let (t, id) = (t.clone(), id.clone());
                Box::pin(async move {
                    let args = || -> Vec<Val> { vec![t.as_str().into(), id.as_str().into()] };
                    tx.exec(
                        "DELETE FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id IN \
                         (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2)",
                        args(),
                    )
                    .await?;
                    tx.exec(
                        "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2",
                        args(),
                    )
                    .await?;
                    let n = tx
                        .exec("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2", args())
                        .await?;
                    Ok((n > 0, true))
                })
            })
            .await?;
        Ok(gone)
    }

    /// Adds deliveries for events up to `to` and moves the cursor from `from` to `to`, in one
    /// commit; `false` (nothing written) when the cursor was no longer `from`.
    pub async fn fan_out(
        &self,
        tenant: &str,
        webhook_id: &str,
        from: i64,
        to: i64,
        deliveries: Vec<NewDelivery>,
    ) -> Result<bool> {
        let (t, w) = (tenant.to_string(), webhook_id.to_string());
        let (moved, _) = self
            .unit(tenant, move |tx| {
                let (t, w, deliveries) = (t.clone(), w.clone(), deliveries.clone());
                Box::pin(async move {
                    let n = tx
                        .exec(
                            "UPDATE webhooks SET cursor = $3 WHERE tenant_id = $1 AND id = $2 AND cursor = $4",
                            vec![t.as_str().into(), w.as_str().into(), to.into(), from.into()],
                        )
                        .await?;
                    if n == 0 {
                        return Ok((false, false));
                    }
                    let now = now_ms();
                    for chunk in deliveries.chunks(500) {
                        let mut args: Vec<Val> = vec![t.as_str().into(), w.as_str().into(), now.into()];
                        let mut values = Vec::with_capacity(chunk.len());
                        for (position, event_id, kind, subject, body) in chunk {
                            let b = args.len();
                            values.push(format!(
                                "($1, ${}, $2, ${}, ${}, ${}, ${}, ${}, 'pending', 0, $3, $3, $3)",
                                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6
                            ));
                            args.push(format!("dlv_{}", uuid::Uuid::now_v7().simple()).into());
                            args.push((*position).into());
                            args.push(event_id.as_str().into());
                            args.push(kind.as_str().into());
                            args.push(subject.as_str().into());
                            args.push(body.as_str().into());
                        }
                        tx.exec(
                            &format!(
                                "INSERT INTO webhook_deliveries (tenant_id, id, webhook_id, position, event_id, event_type, subject, body, status, attempts, next_attempt_at_ms, created_at_ms, window_start_ms) \
                                 VALUES {} ON CONFLICT (tenant_id, webhook_id, position) DO NOTHING",
                                values.join(", ")
                            ),
                            args,
                        )
                        .await?;
                    }
                    Ok((true, true))
                })
            })
            .await?;
        Ok(moved)
    }

    /// The oldest pending delivery of each subject of a subscription that is due at `now_ms`, in
    /// log order (at most `limit`): what may be sent now without overtaking an earlier event of
    /// its subject. Read per subject, so a subject with many failing deliveries holds back no
    /// other subject.
    pub async fn due_heads(
        &self,
        tenant: &str,
        webhook_id: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {DELIVERY} FROM webhook_deliveries d WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending' \
                     AND next_attempt_at_ms <= $3 AND position = (SELECT MIN(position) FROM webhook_deliveries h \
                       WHERE h.tenant_id = d.tenant_id AND h.webhook_id = d.webhook_id AND h.subject = d.subject AND h.status = 'pending') \
                     ORDER BY position LIMIT $4"
                ),
                vec![tenant.into(), webhook_id.into(), now_ms.into(), limit.into()],
            )
            .await?;
        rows.iter().map(|r| delivery_from(r)).collect()
    }

    /// When the next pending delivery of a subscription falls due (none: `None`).
    pub async fn next_due(&self, tenant: &str, webhook_id: &str) -> Result<Option<i64>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT MIN(next_attempt_at_ms) FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'",
                vec![tenant.into(), webhook_id.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => r[0].opt_int(),
            None => Ok(None),
        }
    }

    /// Deletes finished deliveries (and their attempts) and sent or dead notifications that
    /// finished before `before_ms`, up to `limit` of each.
    pub async fn prune_deliveries_and_notifications(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> Result<()> {
        self.unit(ALL_TENANTS, move |tx| {
            Box::pin(async move {
                tx.exec(
                    "DELETE FROM webhook_attempts WHERE (tenant_id, delivery_id) IN (SELECT tenant_id, id FROM webhook_deliveries \
                     WHERE status <> 'pending' AND finished_at_ms < $1 ORDER BY finished_at_ms LIMIT $2)",
                    vec![before_ms.into(), limit.into()],
                )
                .await?;
                tx.exec(
                    "DELETE FROM webhook_deliveries WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM webhook_deliveries \
                     WHERE status <> 'pending' AND finished_at_ms < $1 ORDER BY finished_at_ms LIMIT $2)",
                    vec![before_ms.into(), limit.into()],
                )
                .await?;
                tx.exec(
                    "DELETE FROM notifications WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM notifications \
                     WHERE status <> 'pending' AND created_at_ms < $1 ORDER BY created_at_ms LIMIT $2)",
                    vec![before_ms.into(), limit.into()],
                )
                .await?;
                Ok(((), true))
            })
        })
        .await?;
        Ok(())
    }

    /// Records attempts and the subscription's circuit state after them, in one commit.
    /// `failures`/`open_until_ms`: the breaker's state to store.
    /// Nothing is written unless `holder` still holds the relay's lease (another process took
    /// over: its own attempts count), and an attempt is recorded only on a delivery still pending
    /// at the attempt's number; whether they were recorded.
    pub async fn record_attempts(
        &self,
        holder: &str,
        tenant: &str,
        webhook_id: &str,
        outcomes: Vec<AttemptOutcome>,
        failures: i64,
        open_until_ms: i64,
    ) -> Result<bool> {
        let (t, w, holder) = (
            tenant.to_string(),
            webhook_id.to_string(),
            holder.to_string(),
        );
        let (recorded, _) = self.unit(tenant, move |tx| {
            let (t, w, outcomes, holder) = (t.clone(), w.clone(), outcomes.clone(), holder.clone());
            Box::pin(async move {
                if !crate::events::holds_lease(tx, &holder).await? {
                    return Ok((false, false));
                }
                let attempts: Vec<Vec<Val>> = outcomes
                    .iter()
                    .map(|o| {
                        let a = &o.attempt;
                        vec![
                            t.as_str().into(),
                            o.delivery_id.as_str().into(),
                            a.attempt.into(),
                            a.at_ms.into(),
                            a.status_code.into(),
                            a.error.clone().into(),
                            a.duration_ms.into(),
                        ]
                    })
                    .collect();
                crate::engine::many(
                    tx,
                    "INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, at_ms, status_code, error, duration_ms) VALUES",
                    "ON CONFLICT (tenant_id, delivery_id, attempt) DO NOTHING",
                    &[],
                    &attempts,
                )
                .await?;
                // Delivered ones in one statement (the common case); the rest one by one.
                let delivered: Vec<Vec<Val>> = outcomes
                    .iter()
                    .filter(|o| o.delivered)
                    .map(|o| vec![o.delivery_id.as_str().into(), (o.attempt.attempt - 1).into()])
                    .collect();
                let now = now_ms();
                crate::engine::many(
                    tx,
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, next_attempt_at_ms = $2, finished_at_ms = $2 \
                     WHERE tenant_id = $1 AND status = 'pending' AND (id, attempts) IN (VALUES",
                    ")",
                    &[t.as_str().into(), now.into()],
                    &delivered,
                )
                .await?;
                for o in outcomes.iter().filter(|o| !o.delivered) {
                    let a = &o.attempt;
                    let (status, next, finished): (&str, i64, Option<i64>) = match o.retry_at_ms {
                        Some(at) => ("pending", at, None),
                        None => ("dead", a.at_ms, Some(a.at_ms + a.duration_ms)),
                    };
                    tx.exec(
                        "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at_ms = $5, finished_at_ms = $6 \
                         WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND attempts = $4 - 1",
                        vec![
                            t.as_str().into(),
                            o.delivery_id.as_str().into(),
                            status.into(),
                            a.attempt.into(),
                            next.into(),
                            finished.into(),
                        ],
                    )
                    .await?;
                }
                tx.exec(
                    "UPDATE webhooks SET consecutive_failures = $3, open_until_ms = $4 WHERE tenant_id = $1 AND id = $2",
                    vec![t.as_str().into(), w.as_str().into(), failures.into(), open_until_ms.into()],
                )
                .await?;
                Ok((true, true))
            })
        })
        .await?;
        Ok(recorded)
    }

    /// A subscription's deliveries, newest first, before `before` (a position), optionally of
    /// one status; with their attempts.
    pub async fn deliveries(
        &self,
        tenant: &str,
        webhook_id: &str,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let mut args: Vec<Val> = vec![
            tenant.into(),
            webhook_id.into(),
            before.unwrap_or(i64::MAX).into(),
            limit.into(),
        ];
        let filter = match status {
            Some(s) => {
                args.push(s.into());
                " AND status = $5"
            }
            None => "",
        };
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {DELIVERY} FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND position < $3{filter} \
                     ORDER BY position DESC LIMIT $4"
                ),
                args,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = delivery_from(r)?;
            let attempts = self.attempts(tenant, &d.id).await?;
            out.push((d, attempts));
        }
        Ok(out)
    }

    /// One delivery with its attempts.
    pub async fn delivery(
        &self,
        tenant: &str,
        webhook_id: &str,
        id: &str,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {DELIVERY} FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND id = $3"
                ),
                vec![tenant.into(), webhook_id.into(), id.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => {
                let d = delivery_from(r)?;
                let attempts = self.attempts(tenant, &d.id).await?;
                Ok(Some((d, attempts)))
            }
            None => Ok(None),
        }
    }

    async fn attempts(&self, tenant: &str, delivery_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT attempt, at_ms, status_code, error, duration_ms FROM webhook_attempts \
                 WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempt",
                vec![tenant.into(), delivery_id.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r[0].int()?,
                    at_ms: r[1].int()?,
                    status_code: r[2].opt_int()?,
                    error: r[3].opt_text()?,
                    duration_ms: r[4].int()?,
                })
            })
            .collect()
    }

    /// Makes a delivery due again now (a replay: delivered and dead ones too); whether it exists.
    pub async fn replay_delivery(&self, tenant: &str, webhook_id: &str, id: &str) -> Result<bool> {
        let rows = self
            .write_rows(
                tenant,
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at_ms = $4, window_start_ms = $4, finished_at_ms = NULL \
                 WHERE tenant_id = $1 AND webhook_id = $2 AND id = $3 RETURNING id",
                vec![tenant.into(), webhook_id.into(), id.into(), now_ms().into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
