//! Notifications to shoppers, a consumer of the event log run by the relay's lease holder.
//!
//! The notifier follows the log (cursor `notifications`) and, for a placement (the order
//! confirmation), a shipment, a delivery and a refund, writes the messages it owes: an email to
//! the order's address, an in-app notification for a signed-up shopper (read by
//! `GET /v1/me/notifications/stream`) and a Web Push message to each of the shopper's
//! subscriptions — as the shopper's preferences allow — rendered from the tenant's templates
//! when the event is seen, in the same commit that moves the cursor. The sender sends pending
//! emails (SMTP with `--smtp-url`; otherwise `.eml` files in the mailbox folder) and pushes,
//! retrying failures after 2 s, doubling up to 10 min, 10 attempts in all.

use crate::AppState;
use ordo_domain::events::EventType;
use ordo_domain::{Money, Order};
use ordo_store::{NotificationRecord, StoredEvent};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The last attempt at a message; after it fails the message is `dead`.
pub const MAX_ATTEMPTS: i64 = 10;

/// How notifications are sent (`ordo serve` flags).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Send email over SMTP at this URL (`smtp://host:port`, `smtps://…`; `--smtp-url`).
    pub smtp_url: Option<String>,
    /// Without SMTP, emails are written here as `.eml` files, one folder per tenant.
    pub mailbox_dir: PathBuf,
    /// The `From` of every email.
    pub mail_from: String,
    /// Templates that override the built-in ones: `<dir>/<tenant>/<name>.{subject,txt,html}`.
    pub templates_dir: Option<PathBuf>,
    /// The shop's name in messages.
    pub shop_name: String,
    /// Run the notifier at all.
    pub enabled: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mailbox_dir: PathBuf::from("ordo-data/mailbox"),
            mail_from: "Ordo <orders@ordo.localhost>".into(),
            templates_dir: None,
            shop_name: "Ordo".into(),
            enabled: true,
        }
    }
}

/// The built-in templates: (name, source).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "order_placed.subject",
        include_str!("../../templates/notifications/order_placed.subject"),
    ),
    (
        "order_placed.txt",
        include_str!("../../templates/notifications/order_placed.txt"),
    ),
    (
        "order_placed.html",
        include_str!("../../templates/notifications/order_placed.html"),
    ),
    (
        "fulfillment_shipped.subject",
        include_str!("../../templates/notifications/fulfillment_shipped.subject"),
    ),
    (
        "fulfillment_shipped.txt",
        include_str!("../../templates/notifications/fulfillment_shipped.txt"),
    ),
    (
        "fulfillment_shipped.html",
        include_str!("../../templates/notifications/fulfillment_shipped.html"),
    ),
    (
        "fulfillment_delivered.subject",
        include_str!("../../templates/notifications/fulfillment_delivered.subject"),
    ),
    (
        "fulfillment_delivered.txt",
        include_str!("../../templates/notifications/fulfillment_delivered.txt"),
    ),
    (
        "fulfillment_delivered.html",
        include_str!("../../templates/notifications/fulfillment_delivered.html"),
    ),
    (
        "refund_issued.subject",
        include_str!("../../templates/notifications/refund_issued.subject"),
    ),
    (
        "refund_issued.txt",
        include_str!("../../templates/notifications/refund_issued.txt"),
    ),
    (
        "refund_issued.html",
        include_str!("../../templates/notifications/refund_issued.html"),
    ),
];

/// The template of an event type, if shoppers are told about it.
pub fn template_of(kind: &str) -> Option<&'static str> {
    match EventType::parse(kind)? {
        EventType::ORDER_PLACED => Some("order_placed"),
        EventType::FULFILLMENT_SHIPPED => Some("fulfillment_shipped"),
        EventType::FULFILLMENT_DELIVERED => Some("fulfillment_delivered"),
        EventType::REFUND_ISSUED => Some("refund_issued"),
        _ => None,
    }
}

/// Renders messages: a tenant's own template where one exists, the built-in one otherwise.
/// `.html` templates escape what they insert.
pub struct Templates {
    env: minijinja::Environment<'static>,
    dir: Option<PathBuf>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    pub fn new(dir: Option<PathBuf>) -> Self {
        let mut env = minijinja::Environment::new();
        for (name, source) in BUILT_IN {
            env.add_template(name, source)
                .expect("the built-in templates parse");
        }
        Self { env, dir }
    }

    fn render_part(
        &self,
        tenant: &str,
        name: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, String> {
        let own = self
            .dir
            .as_ref()
            .map(|d| d.join(tenant).join(name))
            .filter(|p| p.is_file());
        match own {
            Some(path) => {
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                self.env
                    .render_named_str(name, &source, ctx)
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            None => self
                .env
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("{name}: {e}")),
        }
    }

    pub fn render(
        &self,
        tenant: &str,
        template: &str,
        ctx: &minijinja::Value,
    ) -> Result<Rendered, String> {
        Ok(Rendered {
            subject: self
                .render_part(tenant, &format!("{template}.subject"), ctx)?
                .trim()
                .to_string(),
            text: self.render_part(tenant, &format!("{template}.txt"), ctx)?,
            html: self.render_part(tenant, &format!("{template}.html"), ctx)?,
        })
    }
}

/// What a template sees: the order, the event's particulars and the shop.
pub fn context(order: &Order, event: &StoredEvent, shop: &str) -> minijinja::Value {
    let name = match &order.customer {
        ordo_domain::Customer::Guest(g) => g.name.clone(),
        ordo_domain::Customer::Member { name, .. } => name.clone(),
    };
    let lines: Vec<serde_json::Value> = order
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({"sku": l.sku.as_str(), "name": l.name, "quantity": l.quantity, "total": l.line_total.to_string()})
        })
        .collect();
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    let detail = &data["detail"];
    let amount = data["amount"].as_i64().map(|a| {
        Money {
            amount: a,
            currency: order.totals.total.currency,
        }
        .to_string()
    });
    minijinja::Value::from_serialize(serde_json::json!({
        "shop": shop,
        "order": {
            "id": order.id.to_string(), "number": order.number.to_string(), "customer_name": name,
            "total": order.totals.total.to_string(), "lines": lines,
            "subtotal": order.totals.subtotal.to_string(),
            "discount": (order.totals.discount.amount != 0).then(|| order.totals.discount.to_string()),
            "shipping": order.totals.shipping.to_string(), "tax": order.totals.tax.to_string(),
        },
        "event": {
            "type": event.kind, "time": ordo_domain::events::time_of(event.created_at_ms),
            "carrier": detail["carrier"], "tracking_number": detail["tracking_number"],
            "amount": amount,
        },
    }))
}

/// Starts the notifier and the sender.
pub fn spawn(state: &AppState) {
    if !state.config.notify.enabled {
        return;
    }
    let templates = Arc::new(Templates::new(state.config.notify.templates_dir.clone()));
    tokio::spawn(follow(state.clone(), templates));
    tokio::spawn(send_loop(state.clone()));
}

async fn follow(state: AppState, templates: Arc<Templates>) {
    let mut logged = state.events.subscribe();
    loop {
        if !state.events.is_leader() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        match notify_round(&state, &templates).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "notifier round failed"),
        }
        tokio::select! {
            _ = logged.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        while logged.try_recv().is_ok() {}
    }
}

/// One round: the messages owed for up to 200 events after the cursor; whether it moved.
async fn notify_round(state: &AppState, templates: &Templates) -> Result<bool, String> {
    let store = &state.store;
    let cursor = store
        .event_cursor("notifications")
        .await
        .map_err(|e| e.to_string())?;
    let events = store
        .log_after(cursor, 200)
        .await
        .map_err(|e| e.to_string())?;
    let Some(last) = events.last().and_then(|e| e.position) else {
        return Ok(false);
    };
    let mut rows = Vec::new();
    for e in &events {
        if let Some(template) = template_of(&e.kind) {
            rows.extend(messages_for(state, templates, e, template).await?);
        }
    }
    store
        .add_notifications(cursor, last, rows)
        .await
        .map_err(|e| e.to_string())
}

/// The messages one event owes its order's shopper.
async fn messages_for(
    state: &AppState,
    templates: &Templates,
    e: &StoredEvent,
    template: &str,
) -> Result<Vec<NotificationRecord>, String> {
    let store = &state.store;
    // A placement carries its order; later events are read against the order as it is now.
    let carried = (e.kind == EventType::ORDER_PLACED.as_str())
        .then(|| serde_json::from_str::<Order>(&e.data).ok())
        .flatten();
    let order = match carried {
        Some(o) => o,
        None => match store
            .order(&e.tenant, &e.subject)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(o) => o,
            None => return Ok(vec![]),
        },
    };
    let ctx = context(&order, e, &state.config.notify.shop_name);
    let rendered = match templates.render(&e.tenant, template, &ctx) {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!(error = %err, tenant = %e.tenant, template, "a notification template failed; nothing sent for this event");
            return Ok(vec![]);
        }
    };
    let customer = order.customer.customer_id().map(str::to_string);
    let prefs = match &customer {
        Some(c) => store
            .notification_preferences(&e.tenant, c)
            .await
            .map_err(|e| e.to_string())?,
        None => Default::default(),
    };
    let now = ordo_store::now_ms();
    let position = e.position.unwrap_or_default();
    let row =
        |channel: &str, target: &str, status: &str, html: Option<String>| NotificationRecord {
            tenant: e.tenant.clone(),
            id: format!("ntf_{}", uuid::Uuid::now_v7().simple()),
            customer_id: customer.clone(),
            channel: channel.into(),
            target: target.into(),
            event_id: e.id.clone(),
            event_type: e.kind.clone(),
            position,
            order_id: order.id.to_string(),
            title: rendered.subject.clone(),
            body_text: rendered.text.clone(),
            body_html: html,
            status: status.into(),
            attempts: 0,
            next_attempt_at_ms: now,
            last_error: None,
            created_at_ms: now,
            sent_at_ms: (status == "sent").then_some(now),
        };
    let mut rows = Vec::new();
    if prefs.email {
        rows.push(row(
            "email",
            order.customer.email(),
            "pending",
            Some(rendered.html.clone()),
        ));
    }
    if let Some(c) = &customer {
        if prefs.in_app {
            rows.push(row("in_app", "", "sent", None));
        }
        if prefs.push {
            for s in store
                .push_subscriptions(&e.tenant, c)
                .await
                .map_err(|e| e.to_string())?
            {
                rows.push(row("push", &s.id, "pending", None));
            }
        }
    }
    Ok(rows)
}

/// When to try a message again after attempt `attempt` failed (`None`: it is dead).
pub fn retry_at(attempt: i64, now_ms: i64) -> Option<i64> {
    (attempt < MAX_ATTEMPTS).then(|| now_ms + (2_000i64 << (attempt - 1).clamp(0, 9)).min(600_000))
}

async fn send_loop(state: AppState) {
    let sender = match Sender::new(&state) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "notifications cannot be sent");
            return;
        }
    };
    loop {
        if !state.events.is_leader() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let due = match state.store.due_notifications(64).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending notifications");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let sends = due.iter().map(|n| {
            let sender = sender.clone();
            let state = state.clone();
            async move {
                let result = sender.send(&state, n).await;
                let (sent, error, permanent) = match result {
                    Ok(()) => (true, None, false),
                    Err((e, permanent)) => (false, Some(e), permanent),
                };
                let channel = n.channel.clone();
                metrics::counter!("ordo_notifications_total", "channel" => channel, "outcome" => if sent { "sent" } else { "failed" })
                    .increment(1);
                let retry_at_ms = if sent || permanent {
                    None
                } else {
                    retry_at(n.attempts + 1, ordo_store::now_ms())
                };
                ordo_store::SendOutcome {
                    tenant: n.tenant.clone(),
                    id: n.id.clone(),
                    sent,
                    error,
                    retry_at_ms,
                    attempts_before: n.attempts,
                }
            }
        });
        let outcomes = futures::future::join_all(sends).await;
        // One commit for the round's sends.
        match state
            .store
            .record_notifications(&state.events.holder, outcomes)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::info!("the relay's lease moved on: sends left to the new holder"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot record notifications");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Sends emails and pushes.
struct Sender {
    smtp: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    mailbox: PathBuf,
    from: lettre::message::Mailbox,
    push: super::push::Pusher,
}

impl Sender {
    fn new(state: &AppState) -> Result<Self, String> {
        let s = &state.config.notify;
        let smtp = match &s.smtp_url {
            Some(url) => Some(
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("--smtp-url: {e}"))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => None,
        };
        Ok(Self {
            smtp,
            mailbox: s.mailbox_dir.clone(),
            from: s
                .mail_from
                .parse()
                .map_err(|e| format!("--mail-from: {e}"))?,
            push: super::push::Pusher::new(state.config.webhooks_allow_private),
        })
    }

    /// Sends one message; an error says whether trying again can help (`false`) or not.
    async fn send(&self, state: &AppState, n: &NotificationRecord) -> Result<(), (String, bool)> {
        match n.channel.as_str() {
            "email" => self.email(n).await.map_err(|e| (e, false)),
            "push" => self
                .push
                .send(state, n)
                .await
                .map_err(|e| (e.message, e.permanent)),
            other => Err((format!("nothing sends {other} messages"), true)),
        }
    }

    async fn email(&self, n: &NotificationRecord) -> Result<(), String> {
        use lettre::AsyncTransport;
        use lettre::message::{MultiPart, header};
        let to: lettre::message::Mailbox = n
            .target
            .parse()
            .map_err(|e| format!("the address {}: {e}", n.target))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.title.clone())
            .message_id(None)
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
                n.body_text.clone(),
                n.body_html.clone().unwrap_or_default(),
            ))
            .map_err(|e| format!("cannot build the email: {e}"))?;
        match &self.smtp {
            Some(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP: {e}")),
            None => {
                let dir = self.mailbox.join(&n.tenant);
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("{}-{}.eml", n.created_at_ms, n.id));
                let tmp = path.with_extension("eml.part");
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_html_escapes_what_it_inserts() {
        let t = Templates::new(None);
        let ctx = minijinja::Value::from_serialize(serde_json::json!({
            "shop": "Shop <b>", "order": {"number": "ORD-1", "customer_name": "Ann <script>", "total": "USD 10.00",
              "lines": [{"sku": "A", "name": "Tee", "quantity": 1, "total": "USD 10.00"}]},
            "event": {"carrier": "UPS", "tracking_number": "1Z", "amount": "USD 5.00"},
        }));
        for name in [
            "order_placed",
            "fulfillment_shipped",
            "fulfillment_delivered",
            "refund_issued",
        ] {
            let r = t.render("default", name, &ctx).unwrap();
            assert!(r.subject.contains("ORD-1"), "{name}: {}", r.subject);
            assert!(
                r.text.contains("Ann <script>"),
                "{name}: text is not escaped"
            );
            assert!(
                r.html.contains("Ann &lt;script&gt;"),
                "{name}: html is escaped"
            );
        }
    }

    #[test]
    fn a_tenant_template_overrides_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("acme")).unwrap();
        std::fs::write(
            dir.path().join("acme/order_placed.subject"),
            "ACME got {{ order.number }}",
        )
        .unwrap();
        let t = Templates::new(Some(dir.path().to_path_buf()));
        let ctx = minijinja::Value::from_serialize(
            serde_json::json!({"shop": "s", "order": {"number": "ORD-9", "customer_name": "x", "total": "t", "lines": []}, "event": {}}),
        );
        assert_eq!(
            t.render("acme", "order_placed", &ctx).unwrap().subject,
            "ACME got ORD-9"
        );
        assert_eq!(
            t.render("default", "order_placed", &ctx).unwrap().subject,
            "Your order ORD-9 is confirmed"
        );
    }

    #[test]
    fn sends_are_retried_with_backoff_then_given_up() {
        assert_eq!(retry_at(1, 0), Some(2_000));
        assert_eq!(retry_at(2, 0), Some(4_000));
        assert_eq!(retry_at(9, 0), Some(512_000));
        assert_eq!(retry_at(MAX_ATTEMPTS, 0), None);
    }
}
