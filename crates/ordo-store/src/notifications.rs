//! Notifications to shoppers: the messages the notifier wrote (per channel), shoppers'
//! preferences, and their Web Push subscriptions.

use crate::sql::{Sql, Val};
use crate::{ALL_TENANTS, Result, Store, corrupt, now_ms};

/// One message on one channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotificationRecord {
    pub tenant: String,
    pub id: String,
    pub customer_id: Option<String>,
    /// `email`, `in_app` or `push`.
    pub channel: String,
    /// The address (email), the subscription id (push), or "" (in-app).
    pub target: String,
    pub event_id: String,
    pub event_type: String,
    pub position: i64,
    pub order_id: String,
    pub title: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

const COLUMNS: &str = "tenant_id, id, customer_id, channel, target, event_id, event_type, position, order_id, title, body_text, body_html, status, attempts, next_attempt_at_ms, last_error, created_at_ms, sent_at_ms";

fn from_row(r: &[Val]) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        tenant: r[0].text()?,
        id: r[1].text()?,
        customer_id: r[2].opt_text()?,
        channel: r[3].text()?,
        target: r[4].text()?,
        event_id: r[5].text()?,
        event_type: r[6].text()?,
        position: r[7].int()?,
        order_id: r[8].text()?,
        title: r[9].text()?,
        body_text: r[10].text()?,
        body_html: r[11].opt_text()?,
        status: r[12].text()?,
        attempts: r[13].int()?,
        next_attempt_at_ms: r[14].int()?,
        last_error: r[15].opt_text()?,
        created_at_ms: r[16].int()?,
        sent_at_ms: r[17].opt_int()?,
    })
}

/// What one send came to.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcome {
    pub tenant: String,
    pub id: String,
    pub sent: bool,
    pub error: Option<String>,
    /// When to try again (`None` and not sent: give up).
    pub retry_at_ms: Option<i64>,
    /// The message's attempts before this one (the record is written only if still so).
    pub attempts_before: i64,
}

/// A shopper's channels (absent preferences: all on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preferences {
    pub email: bool,
    pub push: bool,
    pub in_app: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            email: true,
            push: true,
            in_app: true,
        }
    }
}

/// A Web Push subscription.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PushSubscriptionRecord {
    pub id: String,
    pub customer_id: String,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub created_at_ms: i64,
}

fn push_from(r: &[Val]) -> Result<PushSubscriptionRecord> {
    Ok(PushSubscriptionRecord {
        id: r[0].text()?,
        customer_id: r[1].text()?,
        endpoint: r[2].text()?,
        p256dh: r[3].text()?,
        auth: r[4].text()?,
        created_at_ms: r[5].int()?,
    })
}

impl Store {
    /// Writes the messages of events up to log position `to` and moves the notifier's cursor
    /// from `from` to `to`, in one commit; `false` (nothing written) if the cursor moved.
    pub async fn add_notifications(
        &self,
        from: i64,
        to: i64,
        rows: Vec<NotificationRecord>,
    ) -> Result<bool> {
        let (moved, _) = self
            .unit(ALL_TENANTS, move |tx| {
                let rows = rows.clone();
                Box::pin(async move {
                    let n = tx
                        .exec(
                            "UPDATE event_cursors SET position = $1 WHERE name = 'notifications' AND position = $2",
                            vec![to.into(), from.into()],
                        )
                        .await?;
                    if n == 0 {
                        return Ok((false, false));
                    }
                    let values: Vec<Vec<Val>> = rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.tenant.as_str().into(),
                                r.id.as_str().into(),
                                r.customer_id.clone().into(),
                                r.channel.as_str().into(),
                                r.target.as_str().into(),
                                r.event_id.as_str().into(),
                                r.event_type.as_str().into(),
                                r.position.into(),
                                r.order_id.as_str().into(),
                                r.title.as_str().into(),
                                r.body_text.as_str().into(),
                                r.body_html.clone().into(),
                                r.status.as_str().into(),
                                r.attempts.into(),
                                r.next_attempt_at_ms.into(),
                                r.last_error.clone().into(),
                                r.created_at_ms.into(),
                                r.sent_at_ms.into(),
                            ]
                        })
                        .collect();
                    crate::engine::many(
                        tx,
                        &format!("INSERT INTO notifications ({COLUMNS}) VALUES"),
                        "ON CONFLICT (tenant_id, event_id, channel, target) DO NOTHING",
                        &[],
                        &values,
                    )
                    .await?;
                    Ok((true, true))
                })
            })
            .await?;
        Ok(moved)
    }

    /// Email and push messages due now (every tenant), oldest first.
    pub async fn due_notifications(&self, limit: i64) -> Result<Vec<NotificationRecord>> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                &format!(
                    "SELECT {COLUMNS} FROM notifications WHERE status = 'pending' AND next_attempt_at_ms <= $1 \
                     ORDER BY next_attempt_at_ms, position LIMIT $2"
                ),
                vec![now_ms().into(), limit.into()],
            )
            .await?;
        rows.iter().map(|r| from_row(r)).collect()
    }

    /// Records sends in one commit: each `sent`, or due again at its `retry_at_ms`, or `dead`.
    /// Nothing is written unless `holder` still holds the relay's lease; a send is recorded only
    /// on a message still pending at the attempt's number. Whether they were recorded.
    pub async fn record_notifications(
        &self,
        holder: &str,
        outcomes: Vec<SendOutcome>,
    ) -> Result<bool> {
        if outcomes.is_empty() {
            return Ok(true);
        }
        let holder = holder.to_string();
        let (recorded, _) = self.unit(ALL_TENANTS, move |tx| {
            let (outcomes, holder) = (outcomes.clone(), holder.clone());
            Box::pin(async move {
                if !crate::events::holds_lease(tx, &holder).await? {
                    return Ok((false, false));
                }
                let now = now_ms();
                // The common case, sent, in one statement; the rest one by one.
                let sent: Vec<Vec<Val>> = outcomes
                    .iter()
                    .filter(|o| o.sent)
                    .map(|o| vec![o.tenant.as_str().into(), o.id.as_str().into(), o.attempts_before.into()])
                    .collect();
                crate::engine::many(
                    tx,
                    "UPDATE notifications SET status = 'sent', attempts = attempts + 1, next_attempt_at_ms = $1, sent_at_ms = $1 \
                     WHERE status = 'pending' AND (tenant_id, id, attempts) IN (VALUES",
                    ")",
                    &[now.into()],
                    &sent,
                )
                .await?;
                for o in outcomes.iter().filter(|o| !o.sent) {
                    let (status, next) = match o.retry_at_ms {
                        Some(at) => ("pending", at),
                        None => ("dead", now),
                    };
                    tx.exec(
                        "UPDATE notifications SET status = $3, attempts = attempts + 1, next_attempt_at_ms = $4, last_error = COALESCE($5, last_error) \
                         WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND attempts = $6",
                        vec![
                            o.tenant.as_str().into(),
                            o.id.as_str().into(),
                            status.into(),
                            next.into(),
                            o.error.clone().into(),
                            o.attempts_before.into(),
                        ],
                    )
                    .await?;
                }
                Ok((true, true))
            })
        })
        .await?;
        Ok(recorded)
    }

    /// A shopper's in-app notifications after log position `after`, oldest first.
    pub async fn in_app_notifications(
        &self,
        tenant: &str,
        customer_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND customer_id = $2 AND channel = 'in_app' AND position > $3 \
                     ORDER BY position LIMIT $4"
                ),
                vec![tenant.into(), customer_id.into(), after.into(), limit.into()],
            )
            .await?;
        rows.iter().map(|r| from_row(r)).collect()
    }

    /// Every message about one order (tests, support).
    pub async fn order_notifications(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND order_id = $2 ORDER BY position, channel, target"
                ),
                vec![tenant.into(), order_id.into()],
            )
            .await?;
        rows.iter().map(|r| from_row(r)).collect()
    }

    pub async fn notification_preferences(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> Result<Preferences> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT email, push, in_app FROM notification_preferences WHERE tenant_id = $1 AND customer_id = $2",
                vec![tenant.into(), customer_id.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Preferences {
                email: r[0].int()? != 0,
                push: r[1].int()? != 0,
                in_app: r[2].int()? != 0,
            }),
            None => Ok(Preferences::default()),
        }
    }

    pub async fn set_notification_preferences(
        &self,
        tenant: &str,
        customer_id: &str,
        p: Preferences,
    ) -> Result<()> {
        self.write_rows(
            tenant,
            "INSERT INTO notification_preferences (tenant_id, customer_id, email, push, in_app, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET email = excluded.email, push = excluded.push, in_app = excluded.in_app, updated_at_ms = excluded.updated_at_ms \
             RETURNING customer_id",
            vec![
                tenant.into(),
                customer_id.into(),
                i64::from(p.email).into(),
                i64::from(p.push).into(),
                i64::from(p.in_app).into(),
                now_ms().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Adds (or returns the existing) subscription of a shopper's browser.
    pub async fn add_push_subscription(
        &self,
        tenant: &str,
        s: &PushSubscriptionRecord,
    ) -> Result<PushSubscriptionRecord> {
        let rows = self
            .write_rows(
                tenant,
                "INSERT INTO push_subscriptions (tenant_id, id, customer_id, endpoint, p256dh, auth, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, customer_id, endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth \
                 RETURNING id, customer_id, endpoint, p256dh, auth, created_at_ms",
                vec![
                    tenant.into(),
                    s.id.as_str().into(),
                    s.customer_id.as_str().into(),
                    s.endpoint.as_str().into(),
                    s.p256dh.as_str().into(),
                    s.auth.as_str().into(),
                    s.created_at_ms.into(),
                ],
            )
            .await?;
        push_from(
            rows.first()
                .ok_or_else(|| corrupt("push subscription upsert returned no row"))?,
        )
    }

    pub async fn push_subscriptions(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> Result<Vec<PushSubscriptionRecord>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT id, customer_id, endpoint, p256dh, auth, created_at_ms FROM push_subscriptions \
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at_ms, id",
                vec![tenant.into(), customer_id.into()],
            )
            .await?;
        rows.iter().map(|r| push_from(r)).collect()
    }

    pub async fn push_subscription(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<PushSubscriptionRecord>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT id, customer_id, endpoint, p256dh, auth, created_at_ms FROM push_subscriptions WHERE tenant_id = $1 AND id = $2",
                vec![tenant.into(), id.into()],
            )
            .await?;
        rows.first().map(|r| push_from(r)).transpose()
    }

    /// Deletes a shopper's subscription; whether it was theirs and existed.
    pub async fn delete_push_subscription(
        &self,
        tenant: &str,
        customer_id: &str,
        id: &str,
    ) -> Result<bool> {
        let rows = self
            .write_rows(
                tenant,
                "DELETE FROM push_subscriptions WHERE tenant_id = $1 AND customer_id = $2 AND id = $3 RETURNING id",
                vec![tenant.into(), customer_id.into(), id.into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
