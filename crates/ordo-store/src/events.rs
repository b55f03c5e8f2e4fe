//! The outbox as an event log: appending events in the writing transaction, and what the relay
//! and the log's readers need (the lease, numbering committed rows in the log, reads after a
//! position, consumer cursors, pruning).
//!
//! Per-subject numbers: `event_subjects` holds each subject's last `seq`; the upsert that takes
//! the next one keeps the row locked until commit, so one subject's events commit in number order
//! and their outbox ids rise with their numbers. An order's placement is its number 1 and writes
//! no counter row (placement is the hot path): its second event creates the row at 2. Lock order:
//! a SKU's counter is taken after its stock rows and before the feed clock.

use crate::sql::{Sql, Tx, Val};
use crate::{ALL_TENANTS, Result, Store, corrupt, now_ms};
use ordo_domain::events::{CloudEvent, EventType, source_of, time_of};

const COLUMNS: &str =
    "id, tenant_id, event_type, aggregate_id, seq, event_id, payload, created_at_ms, position";

/// One event as stored: its outbox row id, its place in the log once published, the event with
/// its data as stored (JSON text, not parsed: consumers that pass it on never parse it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub row_id: i64,
    pub tenant: String,
    pub position: Option<i64>,
    /// When the change committed (Unix ms).
    pub created_at_ms: i64,
    pub id: String,
    /// The type (`ordo.order.placed`).
    pub kind: String,
    pub subject: String,
    pub sequence: i64,
    /// The event's `data`, JSON.
    pub data: String,
}

impl StoredEvent {
    /// The CloudEvent (parses `data`).
    pub fn cloud_event(&self) -> Result<CloudEvent> {
        Ok(CloudEvent {
            specversion: "1.0".into(),
            id: self.id.clone(),
            source: source_of(&self.tenant),
            kind: self.kind.clone(),
            subject: self.subject.clone(),
            time: time_of(self.created_at_ms),
            datacontenttype: "application/json".into(),
            sequence: self.sequence,
            data: serde_json::from_str(&self.data).map_err(corrupt)?,
        })
    }

    /// The CloudEvent as JSON text, written around the stored data without parsing it.
    pub fn to_json(&self) -> String {
        let q = |v: &str| serde_json::to_string(v).unwrap_or_default();
        format!(
            r#"{{"specversion":"1.0","id":{},"source":{},"type":{},"subject":{},"time":{},"datacontenttype":"application/json","sequence":{},"data":{}}}"#,
            q(&self.id),
            q(&source_of(&self.tenant)),
            q(&self.kind),
            q(&self.subject),
            q(&time_of(self.created_at_ms)),
            self.sequence,
            self.data
        )
    }
}

fn stored_from(r: &[Val]) -> Result<StoredEvent> {
    Ok(StoredEvent {
        row_id: r[0].int()?,
        tenant: r[1].text()?,
        kind: r[2].text()?,
        subject: r[3].text()?,
        sequence: r[4].int()?,
        id: r[5].text()?,
        data: r[6].text()?,
        created_at_ms: r[7].int()?,
        position: r[8].opt_int()?,
    })
}

/// A new event id: UUIDv7, so ids sort roughly by time.
pub(crate) fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The values of an outbox row for `INSERT INTO outbox (…) VALUES`, see `INSERT_HEAD`.
pub(crate) fn row(
    tenant: &str,
    kind: EventType,
    subject: &str,
    seq: i64,
    data: String,
    at_ms: i64,
) -> Vec<Val> {
    vec![
        tenant.into(),
        kind.as_str().into(),
        subject.into(),
        data.into(),
        at_ms.into(),
        new_event_id().into(),
        seq.into(),
    ]
}

pub(crate) const INSERT_HEAD: &str = "INSERT INTO outbox (tenant_id, event_type, aggregate_id, payload, created_at_ms, event_id, seq) VALUES";

/// Takes the subject's next number; `first` when it has none yet.
async fn next_seq<S: Sql>(tx: &mut S, tenant: &str, subject: &str, first: i64) -> Result<i64> {
    let rows = tx
        .rows(
            "INSERT INTO event_subjects (tenant_id, subject, last_seq) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, subject) DO UPDATE SET last_seq = event_subjects.last_seq + 1 RETURNING last_seq",
            vec![tenant.into(), subject.into(), first.into()],
        )
        .await?;
    rows.first()
        .ok_or_else(|| corrupt("event_subjects upsert returned no row"))?[0]
        .int()
}

async fn insert<S: Sql>(
    tx: &mut S,
    tenant: &str,
    kind: EventType,
    subject: &str,
    first: i64,
    data: &serde_json::Value,
) -> Result<()> {
    let seq = next_seq(tx, tenant, subject, first).await?;
    tx.exec(
        &format!("{INSERT_HEAD} ($1, $2, $3, $4, $5, $6, $7)"),
        row(tenant, kind, subject, seq, data.to_string(), now_ms()),
    )
    .await?;
    Ok(())
}

/// Appends an event of an order placed earlier (its placement was number 1).
pub(crate) async fn append_for_order<S: Sql>(
    tx: &mut S,
    tenant: &str,
    order_id: &str,
    kind: EventType,
    data: &serde_json::Value,
) -> Result<()> {
    insert(tx, tenant, kind, order_id, 2, data).await
}

/// Appends an event whose subject is not an order (a SKU, a model).
pub(crate) async fn append<S: Sql>(
    tx: &mut S,
    tenant: &str,
    kind: EventType,
    subject: &str,
    data: &serde_json::Value,
) -> Result<()> {
    insert(tx, tenant, kind, subject, 1, data).await
}

/// `ordo.inventory.updated` for every SKU among `rows` (stock rows after a change), one event per
/// SKU with its changed locations, in SKU order (the counters' lock order).
pub(crate) async fn inventory_updated(
    tx: &mut Tx<'_>,
    tenant: &str,
    rows: &[crate::feed::StockChangeRow],
    reason: &str,
) -> Result<()> {
    let mut by_sku: std::collections::BTreeMap<&str, Vec<serde_json::Value>> =
        std::collections::BTreeMap::new();
    for r in rows {
        by_sku.entry(&r.sku).or_default().push(serde_json::json!({
            "location_id": r.location_id,
            "on_hand": r.on_hand,
            "reserved": r.reserved,
            "held": r.held,
            "safety_stock": r.safety_stock,
            "available": (r.on_hand - r.reserved - r.held - r.safety_stock).max(0),
        }));
    }
    for (sku, levels) in by_sku {
        let data = serde_json::json!({"sku": sku, "reason": reason, "levels": levels});
        append(tx, tenant, EventType::INVENTORY_UPDATED, sku, &data).await?;
    }
    Ok(())
}

/// Whether `holder` holds the relay's lease now (in the transaction `tx`).
pub(crate) async fn holds_lease<S: Sql>(tx: &mut S, holder: &str) -> Result<bool> {
    let rows = tx
        .rows(
            "SELECT 1 FROM relay_lease WHERE name = 'outbox' AND holder = $1 AND expires_at_ms >= $2",
            vec![holder.into(), now_ms().into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

impl Store {
    /// Takes or renews the relay's lease for `ttl_ms`; whether `holder` holds it now.
    pub async fn relay_lease(&self, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_ms();
        let rows = self
            .write_rows(
                ALL_TENANTS,
                "UPDATE relay_lease SET holder = $1, expires_at_ms = $2 \
                 WHERE name = 'outbox' AND (holder = $1 OR expires_at_ms < $3) RETURNING name",
                vec![holder.into(), (now + ttl_ms).into(), now.into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Events not yet in the log, oldest first (every tenant).
    pub async fn unsequenced_events(&self, limit: i64) -> Result<Vec<StoredEvent>> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                &format!(
                    "SELECT {COLUMNS} FROM outbox WHERE position IS NULL ORDER BY id LIMIT $1"
                ),
                vec![limit.into()],
            )
            .await?;
        rows.iter().map(|r| stored_from(r)).collect()
    }

    /// Numbers committed events in the log, in the order given, if `holder` still holds the
    /// lease (checked under the lease row's lock, in the same commit); their positions, or
    /// `None` when the lease was lost (nothing is written).
    pub async fn sequence_events(
        &self,
        holder: &str,
        row_ids: Vec<i64>,
    ) -> Result<Option<Vec<i64>>> {
        if row_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let holder = holder.to_string();
        let (positions, _) = self
            .unit(ALL_TENANTS, move |tx| {
                let (holder, ids) = (holder.clone(), row_ids.clone());
                Box::pin(async move {
                    let now = now_ms();
                    let n = ids.len() as i64;
                    let rows = tx
                        .rows(
                            "UPDATE relay_lease SET last_position = last_position + $1 \
                             WHERE name = 'outbox' AND holder = $2 AND expires_at_ms >= $3 RETURNING last_position",
                            vec![n.into(), holder.as_str().into(), now.into()],
                        )
                        .await?;
                    let Some(last) = rows.first().map(|r| r[0].int()).transpose()? else {
                        return Ok((None, false));
                    };
                    let first = last - n + 1;
                    let positions: Vec<i64> = (first..=last).collect();
                    let pairs: Vec<(Val, Val)> = ids
                        .iter()
                        .zip(&positions)
                        .map(|(id, p)| (Val::from(*id), Val::from(*p)))
                        .collect();
                    let (changed, _) = crate::engine::update_each(
                        tx,
                        "outbox",
                        "id",
                        "position = {case}, published_at_ms = $1",
                        "position IS NULL",
                        "",
                        &[now.into()],
                        &pairs,
                    )
                    .await?;
                    if changed != n as u64 {
                        return Err(corrupt(format!(
                            "{changed} of {n} events were still outside the log under the relay's lease"
                        )));
                    }
                    Ok((Some(positions), true))
                })
            })
            .await?;
        Ok(positions)
    }

    /// The tenant's published events after log position `after`, in log order; `types` filters.
    pub async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        types: &[String],
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let mut args: Vec<Val> = vec![tenant.into(), after.into(), limit.into()];
        let filter = if types.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..types.len()).map(|i| format!("${}", i + 4)).collect();
            args.extend(types.iter().map(Val::from));
            format!(" AND event_type IN ({})", marks.join(", "))
        };
        let rows = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND position > $2{filter} ORDER BY position LIMIT $3"
                ),
                args,
            )
            .await?;
        rows.iter().map(|r| stored_from(r)).collect()
    }

    /// The log position of one of the tenant's events (`None`: unknown, or not published yet).
    pub async fn event_position(&self, tenant: &str, event_id: &str) -> Result<Option<i64>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT position FROM outbox WHERE tenant_id = $1 AND event_id = $2",
                vec![tenant.into(), event_id.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => r[0].opt_int(),
            None => Ok(None),
        }
    }

    /// Every tenant's events after log position `after`, in log order (the NATS publisher).
    pub async fn log_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                &format!(
                    "SELECT {COLUMNS} FROM outbox WHERE position > $1 ORDER BY position LIMIT $2"
                ),
                vec![after.into(), limit.into()],
            )
            .await?;
        rows.iter().map(|r| stored_from(r)).collect()
    }

    /// How far an internal consumer of the log (`nats`, `notifications`) got.
    pub async fn event_cursor(&self, name: &str) -> Result<i64> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                "SELECT position FROM event_cursors WHERE name = $1",
                vec![name.into()],
            )
            .await?;
        rows.first()
            .ok_or_else(|| corrupt(format!("no event cursor {name}")))?[0]
            .int()
    }

    /// Moves a consumer's cursor forward to `to` while `holder` holds the relay's lease; whether
    /// it moved. Never moves it back.
    pub async fn advance_event_cursor(&self, holder: &str, name: &str, to: i64) -> Result<bool> {
        let rows = self
            .write_rows(
                ALL_TENANTS,
                "UPDATE event_cursors SET position = $1 WHERE name = $2 AND position < $1 \
                 AND EXISTS (SELECT 1 FROM relay_lease WHERE name = 'outbox' AND holder = $3 AND expires_at_ms >= $4) RETURNING name",
                vec![to.into(), name.into(), holder.into(), now_ms().into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Deletes up to `limit` events that entered the log before `before_ms` and at or below
    /// position `upto` (what every consumer that must see them has seen); how many went.
    pub async fn prune_events(&self, before_ms: i64, upto: i64, limit: i64) -> Result<u64> {
        let rows = self
            .write_rows(
                ALL_TENANTS,
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE position <= $3 AND published_at_ms < $1 ORDER BY id LIMIT $2) RETURNING id",
                vec![before_ms.into(), limit.into(), upto.into()],
            )
            .await?;
        Ok(rows.len() as u64)
    }
}

impl Store {
    /// The lowest webhook cursor (every tenant): the log must keep what lies above it.
    pub async fn webhook_cursor_floor(&self) -> Result<Option<i64>> {
        let rows = self
            .read_rows(ALL_TENANTS, "SELECT MIN(cursor) FROM webhooks", vec![])
            .await?;
        match rows.first() {
            Some(r) => r[0].opt_int(),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_written_around_stored_data_is_the_cloud_event() {
        let e = StoredEvent {
            row_id: 1,
            tenant: "a\"b".into(),
            position: Some(7),
            created_at_ms: 1_700_000_000_123,
            id: "01a0".into(),
            kind: "ordo.order.placed".into(),
            subject: "ord_1".into(),
            sequence: 3,
            data: r#"{"x":[1,2],"y":"z"}"#.into(),
        };
        let written: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            written,
            serde_json::to_value(e.cloud_event().unwrap()).unwrap()
        );
        assert_eq!(written["source"], "/ordo/a\"b");
    }
}
