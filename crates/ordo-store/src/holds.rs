//! Checkout holds: a cart holds the stock of its lines for a while, at the nodes the routing
//! engine would ship them from. Held units count against everyone else's availability
//! (`stock.held`); the cart's order consumes its hold (`engine::place_set`); a sweeper releases
//! expired holds. Lock order as everywhere: stock rows (sorted) → hold rows → the feed clock.

use crate::engine::rows_in;
use crate::feed::{self, StockChangeRow};
use crate::orders::{PlaceError, Shortage};
use crate::routing::Network;
use crate::sql::{Sql, Tx};
use crate::{ALL_TENANTS, Result, Store, StoreError, corrupt, now_ms};
use ordo_domain::routing::{Capabilities, ReasonCode};
use ordo_domain::{Currency, FieldErrors, LocationId, ShipmentGroup};
use std::collections::{BTreeMap, HashMap};

/// What a cart holds at one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldUnits {
    pub sku: String,
    pub location_id: String,
    pub quantity: i64,
}

#[derive(Debug)]
pub enum HoldOutcome {
    Held {
        units: Vec<HeldUnits>,
        expires_at_ms: i64,
    },
    /// Lines the network cannot cover now (what eligible nodes could ship).
    Short(Vec<Shortage>),
    /// Stock covers the lines but no node holding it can ship them (capacity).
    NoRoute(Vec<ReasonCode>),
    /// The addresses cannot be routed.
    Unroutable(FieldErrors),
    /// The cart became an order (while the hold was asked for).
    CartOrdered,
}

impl Store {
    /// Holds the stock `shipments` need (explicit lines) for `cart_id` until `expires_at_ms`,
    /// replacing any hold the cart had (its units count for it while it is re-planned).
    pub async fn hold_cart(
        &self,
        tenant: &str,
        cart_id: &str,
        shipments: Vec<ShipmentGroup>,
        currency: Currency,
        expires_at_ms: i64,
    ) -> Result<HoldOutcome> {
        let (t, cart) = (tenant.to_string(), cart_id.to_string());
        let (outcome, _) = self
            .unit(tenant, move |tx| {
                let (t, cart, shipments) = (t.clone(), cart.clone(), shipments.clone());
                Box::pin(async move {
                    let outcome =
                        hold_in(tx, &t, &cart, &shipments, currency, expires_at_ms).await?;
                    let keep = matches!(outcome, HoldOutcome::Held { .. });
                    Ok((outcome, keep))
                })
            })
            .await?;
        Ok(outcome)
    }

    /// Releases holds that expired before `now_ms`, at most `limit` rows of them; returns how
    /// many were released.
    pub async fn release_expired_holds(&self, now_ms: i64, limit: i64) -> Result<usize> {
        let rows = self
            .read_rows(
                ALL_TENANTS,
                "SELECT tenant_id, cart_id, sku, location_id FROM stock_holds WHERE expires_at_ms <= $1 ORDER BY tenant_id LIMIT $2",
                vec![now_ms.into(), limit.into()],
            )
            .await?;
        let mut by_tenant: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
        for r in &rows {
            by_tenant.entry(r[0].text()?).or_default().push((
                r[1].text()?,
                r[2].text()?,
                r[3].text()?,
            ));
        }
        let mut released = 0;
        for (tenant, expired) in by_tenant {
            let t = tenant.clone();
            let (n, _) = self
                .unit(&tenant, move |tx| {
                    let (t, expired) = (t.clone(), expired.clone());
                    Box::pin(async move { Ok((release_in(tx, &t, &expired, now_ms).await?, true)) })
                })
                .await?;
            released += n;
        }
        Ok(released)
    }

    /// A cart's current hold rows.
    pub async fn cart_hold(&self, tenant: &str, cart_id: &str) -> Result<Vec<(HeldUnits, i64)>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT sku, location_id, quantity, expires_at_ms FROM stock_holds WHERE tenant_id = $1 AND cart_id = $2 ORDER BY sku, location_id",
                vec![tenant.into(), cart_id.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    HeldUnits {
                        sku: r[0].text()?,
                        location_id: r[1].text()?,
                        quantity: r[2].int()?,
                    },
                    r[3].int()?,
                ))
            })
            .collect()
    }
}

/// Locks the stock rows of `skus` (sorted), on PostgreSQL.
pub(crate) async fn lock_stock(tx: &mut Tx<'_>, tenant: &str, skus: &[String]) -> Result<()> {
    if tx.locks_rows() && !skus.is_empty() {
        rows_in(
            tx,
            "SELECT 1 FROM stock WHERE tenant_id = $1 AND sku IN",
            "ORDER BY sku, location_id FOR UPDATE",
            vec![tenant.into()],
            skus,
        )
        .await?;
    }
    Ok(())
}

/// Adds `delta` to `held` of each (sku, location), returning the rows as they stand; `Err` if a
/// row would go below 0 or past what is free (the caller's locks make that corruption).
async fn change_held(
    tx: &mut Tx<'_>,
    tenant: &str,
    now: i64,
    deltas: &BTreeMap<(String, String), i64>,
) -> Result<Vec<StockChangeRow>> {
    let mut out = Vec::with_capacity(deltas.len());
    for ((sku, loc), d) in deltas.iter().filter(|(_, d)| **d != 0) {
        let rows = tx
            .rows(
                "UPDATE stock SET held = held + $4, updated_at_ms = $5 \
                 WHERE tenant_id = $1 AND sku = $2 AND location_id = $3 AND held + $4 >= 0 AND ($4 <= 0 OR on_hand - reserved - held - safety_stock >= $4) \
                 RETURNING on_hand, reserved, held, safety_stock",
                vec![tenant.into(), sku.as_str().into(), loc.as_str().into(), (*d).into(), now.into()],
            )
            .await?;
        let r = rows
            .first()
            .ok_or_else(|| corrupt("a held stock row changed under its lock"))?;
        out.push(StockChangeRow {
            sku: sku.clone(),
            location_id: loc.clone(),
            on_hand: r[0].int()?,
            reserved: r[1].int()?,
            held: r[2].int()?,
            safety_stock: r[3].int()?,
        });
    }
    Ok(out)
}

async fn read_hold(
    tx: &mut Tx<'_>,
    tenant: &str,
    cart: &str,
) -> Result<Vec<(String, LocationId, i64)>> {
    let rows = tx.rows("SELECT sku, location_id, quantity FROM stock_holds WHERE tenant_id = $1 AND cart_id = $2", vec![tenant.into(), cart.into()]).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r[0].text()?,
                LocationId::parse(&r[1].text()?).map_err(|_| corrupt("location id"))?,
                r[2].int()?,
            ))
        })
        .collect()
}

/// Units free per SKU and location, before holds are counted for anyone (`… IN (list)` follows).
pub(crate) const LEVELS_SQL: &str = "SELECT sku, location_id, on_hand - reserved - held - safety_stock FROM stock WHERE tenant_id = $1 AND sku IN";
/// What each SKU needs of a node (`… IN (list)` follows).
pub(crate) const NEEDS_SQL: &str =
    "SELECT sku, hazmat, cold_chain, weight_grams FROM products WHERE tenant_id = $1 AND sku IN";

/// Units free for one cart per SKU and location: what everyone may take (`LEVELS_SQL` rows, never
/// clamped, so adding is exact) plus what the cart itself holds.
fn cart_levels(
    rows: &[crate::sql::Row],
    own: &[(String, LocationId, i64)],
) -> Result<HashMap<String, Vec<(LocationId, i64)>>> {
    let mut levels: HashMap<String, Vec<(LocationId, i64)>> = HashMap::new();
    for r in rows {
        let loc = LocationId::parse(&r[1].text()?).map_err(|_| corrupt("location id"))?;
        levels
            .entry(r[0].text()?)
            .or_default()
            .push((loc, r[2].int()?));
    }
    for (sku, loc, q) in own {
        if let Some(l) = levels
            .entry(sku.clone())
            .or_default()
            .iter_mut()
            .find(|(id, _)| id == loc)
        {
            l.1 += q;
        }
    }
    Ok(levels)
}

pub(crate) fn needs_of(rows: &[crate::sql::Row]) -> Result<HashMap<String, Capabilities>> {
    rows.iter()
        .map(|r| {
            Ok((
                r[0].text()?,
                Capabilities {
                    hazmat: r[1].int()? != 0,
                    cold_chain: r[2].int()? != 0,
                    oversize: ordo_domain::network::is_oversize(r[3].opt_int()?),
                },
            ))
        })
        .collect()
}

async fn hold_in(
    tx: &mut Tx<'_>,
    tenant: &str,
    cart: &str,
    shipments: &[ShipmentGroup],
    currency: Currency,
    expires_at_ms: i64,
) -> Result<HoldOutcome> {
    let now = now_ms();
    // The SKUs to lock: the cart's and those of its current hold.
    let mut skus: Vec<String> = shipments
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| l.sku.to_string()))
        .collect();
    skus.extend(
        read_hold(tx, tenant, cart)
            .await?
            .into_iter()
            .map(|(s, _, _)| s),
    );
    skus.sort_unstable();
    skus.dedup();
    lock_stock(tx, tenant, &skus).await?;
    // The cart row after the stock rows, as placement takes them: a cart that became an order
    // meanwhile holds nothing (its order consumed or never needed the hold).
    let lock = if tx.locks_rows() { " FOR UPDATE" } else { "" };
    let cart_row = tx
        .rows(
            &format!("SELECT order_id FROM carts WHERE tenant_id = $1 AND id = $2{lock}"),
            vec![tenant.into(), cart.into()],
        )
        .await?;
    if cart_row
        .first()
        .map(|r| r[0].opt_text())
        .transpose()?
        .flatten()
        .is_some()
    {
        return Ok(HoldOutcome::CartOrdered);
    }
    let old = read_hold(tx, tenant, cart).await?;
    if old.iter().any(|(s, _, _)| !skus.contains(s)) {
        // Another hold of this cart changed it meanwhile; the caller retries.
        return Err(StoreError::Unavailable(
            "the cart's hold changed meanwhile; retry".into(),
        ));
    }
    // Units free for this cart: what everyone may take, plus what it holds already.
    let level_rows = rows_in(tx, LEVELS_SQL, "", vec![tenant.into()], &skus).await?;
    let levels = cart_levels(&level_rows, &old)?;
    let needs = needs_of(&rows_in(tx, NEEDS_SQL, "", vec![tenant.into()], &skus).await?)?;
    let rows = crate::routing::NetworkRows::read(tx, tenant, now).await?;
    let mut network = Network::from_rows(rows, now, needs, currency)?;
    let decision = match network.plan(shipments, &levels, false) {
        Ok((decision, _)) => decision,
        Err(PlaceError::Shortage(s)) => return Ok(HoldOutcome::Short(s)),
        Err(PlaceError::NoRoute(codes)) => return Ok(HoldOutcome::NoRoute(codes)),
        Err(PlaceError::Unroutable(e)) => return Ok(HoldOutcome::Unroutable(e)),
        Err(other) => return Err(corrupt(format!("routing a hold: {other}"))),
    };
    // New hold per (sku, location), against the old one.
    let mut new: BTreeMap<(String, String), i64> = BTreeMap::new();
    for a in decision.allocations() {
        *new.entry((a.sku.to_string(), a.location_id.to_string()))
            .or_default() += a.quantity;
    }
    let mut deltas: BTreeMap<(String, String), i64> = new.clone();
    for (sku, loc, q) in &old {
        *deltas.entry((sku.clone(), loc.to_string())).or_default() -= q;
    }
    // Release first (never below 0), then take: each row's net change at once.
    let changed = change_held(tx, tenant, now, &deltas).await?;
    tx.exec(
        "DELETE FROM stock_holds WHERE tenant_id = $1 AND cart_id = $2",
        vec![tenant.into(), cart.into()],
    )
    .await?;
    for ((sku, loc), q) in &new {
        tx.exec(
            "INSERT INTO stock_holds (tenant_id, cart_id, sku, location_id, quantity, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![tenant.into(), cart.into(), sku.as_str().into(), loc.as_str().into(), (*q).into(), expires_at_ms.into()],
        )
        .await?;
    }
    let postgres = tx.locks_rows();
    feed::append(tx, tenant, now, &changed, postgres).await?;
    let units = new
        .into_iter()
        .map(|((sku, location_id), quantity)| HeldUnits {
            sku,
            location_id,
            quantity,
        })
        .collect();
    Ok(HoldOutcome::Held {
        units,
        expires_at_ms,
    })
}

/// Releases the given hold rows of `tenant` if they are still expired at `now`.
async fn release_in(
    tx: &mut Tx<'_>,
    tenant: &str,
    expired: &[(String, String, String)],
    now: i64,
) -> Result<usize> {
    let mut skus: Vec<String> = expired.iter().map(|(_, s, _)| s.clone()).collect();
    skus.sort_unstable();
    skus.dedup();
    lock_stock(tx, tenant, &skus).await?;
    let mut deltas: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut n = 0;
    for (cart, sku, loc) in expired {
        // Only if still there and still expired (an order may have consumed it, a new hold
        // replaced it).
        let gone = tx
            .rows(
                "DELETE FROM stock_holds WHERE tenant_id = $1 AND cart_id = $2 AND sku = $3 AND location_id = $4 AND expires_at_ms <= $5 RETURNING quantity",
                vec![tenant.into(), cart.as_str().into(), sku.as_str().into(), loc.as_str().into(), now.into()],
            )
            .await?;
        if let Some(r) = gone.first() {
            *deltas.entry((sku.clone(), loc.clone())).or_default() -= r[0].int()?;
            n += 1;
        }
    }
    let changed = change_held(tx, tenant, now_ms(), &deltas).await?;
    let postgres = tx.locks_rows();
    feed::append(tx, tenant, now_ms(), &changed, postgres).await?;
    Ok(n)
}

/// A cart routed as it would be now (nothing locked or written): for shipping options.
#[derive(Debug)]
pub enum CartPlan {
    Planned {
        decision: ordo_domain::routing::Decision,
        input: ordo_domain::routing::RoutingInput,
        /// Each node's local date, `YYYY-MM-DD`.
        today: HashMap<String, String>,
    },
    Short(Vec<Shortage>),
    NoRoute(Vec<ReasonCode>),
    Unroutable(FieldErrors),
}

impl Store {
    /// Routes `shipments` (explicit lines) for `cart_id` against the stock as it is (the cart's
    /// own hold counting as its own), without counting packages or taking any lock.
    pub async fn plan_cart(
        &self,
        tenant: &str,
        cart_id: &str,
        shipments: &[ShipmentGroup],
        currency: Currency,
    ) -> Result<CartPlan> {
        let now = now_ms();
        let mut skus: Vec<String> = shipments
            .iter()
            .flat_map(|s| s.lines.iter().map(|l| l.sku.to_string()))
            .collect();
        skus.sort_unstable();
        skus.dedup();
        if skus.is_empty() {
            return Ok(CartPlan::Short(Vec::new()));
        }
        let list = crate::placeholders(2, skus.len());
        let mut args: Vec<crate::sql::Val> = vec![tenant.into()];
        args.extend(skus.iter().map(|s| crate::sql::Val::from(s.as_str())));
        let level_rows = self
            .read_rows(tenant, &format!("{LEVELS_SQL} ({list})"), args.clone())
            .await?;
        let mut own = Vec::new();
        for (h, _) in self.cart_hold(tenant, cart_id).await? {
            own.push((
                h.sku,
                LocationId::parse(&h.location_id).map_err(|_| corrupt("location id"))?,
                h.quantity,
            ));
        }
        let levels = cart_levels(&level_rows, &own)?;
        let needs = needs_of(
            &self
                .read_rows(tenant, &format!("{NEEDS_SQL} ({list})"), args)
                .await?,
        )?;
        let locations = self
            .read_rows(
                tenant,
                &format!(
                    "SELECT {} FROM locations WHERE tenant_id = $1 ORDER BY id",
                    crate::catalog::LOCATION_COLUMNS
                ),
                vec![tenant.into()],
            )
            .await?;
        let rules = self.read_rows(tenant, "SELECT version, body FROM routing_rules WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", vec![tenant.into()]).await?;
        let rules = rules
            .first()
            .map(|r| Ok::<_, StoreError>((r[0].int()?, r[1].text()?)))
            .transpose()?;
        let loads = self
            .read_rows(tenant, "SELECT location_id, day, packages FROM location_load WHERE tenant_id = $1 AND day >= $2", vec![tenant.into(), crate::routing::earliest_day(now).into()])
            .await?;
        let mut network = Network::from_rows(
            crate::routing::NetworkRows {
                locations,
                rules,
                loads,
            },
            now,
            needs,
            currency,
        )?;
        let today = network.days();
        match network.plan(shipments, &levels, false) {
            Ok((decision, input)) => Ok(CartPlan::Planned {
                decision,
                input,
                today,
            }),
            Err(PlaceError::Shortage(s)) => Ok(CartPlan::Short(s)),
            Err(PlaceError::NoRoute(codes)) => Ok(CartPlan::NoRoute(codes)),
            Err(PlaceError::Unroutable(e)) => Ok(CartPlan::Unroutable(e)),
            Err(other) => Err(corrupt(format!("planning a cart: {other}"))),
        }
    }
}
