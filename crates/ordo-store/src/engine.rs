//! The placement engine: the one place orders are placed, on both backends. A single order is
//! a batch of one; a batch is placed with a fixed number of statements (about fifteen, whatever
//! its size): lock what it will change, run every check against the locked rows in memory, then
//! write every survivor's effects set-based. This is what lets one hot SKU sell thousands of units
//! a second on PostgreSQL.
//!
//! Lock order (the only one in Ordo; documented in ARCHITECTURE.md and decision 0002): stock rows
//! (sku, location) → promotion rows (code) → idempotency rows (key) → payment tokens (token) →
//! carts (id) → payment authorizations (id) → the carts' holds → the nodes' day loads (location)
//! → the tenant's feed clock, each set sorted. PostgreSQL takes each set with
//! `SELECT … ORDER BY … FOR UPDATE` before changing it (an update over a key list would lock in
//! the planner's order, not the list's). A batch never repeats a key, token or cart (the group-commit
//! driver, `commit.rs`, moves repeats to a later round), so batches from any number of processes
//! queue instead of deadlocking.
//!
//! Per-order atomicity holds by construction: every check (claim, price, promotion rules and
//! limits, token, cart, stock) happens before any of the order's effects are written, and an order
//! that fails a check leaves nothing behind. Anything unexpected aborts the batch (`Err`); the
//! driver then places its orders as batches of one.

use crate::authorizations::AuthorizationStatus;
use crate::feed::{self, StockChangeRow};
use crate::orders::{NewOrder, PlaceError};
use crate::routing::{self, Network};
use crate::sql::{Sql, Val};
use crate::{StoreError, corrupt, now_ms, placeholders};
use ordo_domain::order::Allocation;
use ordo_domain::promotion::{PromoRejection, Promotion};
use ordo_domain::routing::Capabilities;
use ordo_domain::{LocationId, Money, Order, OrderNumber, Sku};
use std::collections::{HashMap, HashSet};

/// Most bound values in one statement (below SQLite's and PostgreSQL's limits).
const MAX_PARAMS: usize = 30_000;

/// The size an `IN (…)` list of `n` keys is padded to (the next power of two, repeating its last
/// key), so that batches of any size use a handful of distinct statements, which stay prepared.
pub(crate) fn padded(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// `values` padded to `padded(len)` by repeating the last one.
fn pad<T: Clone>(values: &[T]) -> Vec<T> {
    let mut v = values.to_vec();
    if let Some(last) = values.last() {
        v.resize(padded(values.len()), last.clone());
    }
    v
}

/// `VALUES (…), (…)` rows starting at parameter `first`, `width` values each.
fn values_rows(first: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(first + r * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `head VALUES (…), (…) tail` over all rows, chunked below the parameter limit.
/// `fixed` are bound first as `$1…$k`; each row's values follow. Returns rows affected and
/// any rows returned.
pub(crate) async fn many<S: Sql>(
    tx: &mut S,
    head: &str,
    tail: &str,
    fixed: &[Val],
    rows: &[Vec<Val>],
) -> Result<(u64, Vec<Vec<Val>>), StoreError> {
    let mut affected = 0;
    let mut returned = Vec::new();
    if rows.is_empty() {
        return Ok((0, returned));
    }
    let width = rows[0].len();
    let per = ((MAX_PARAMS - fixed.len()) / width.max(1)).max(1);
    for chunk in rows.chunks(per) {
        let sql = format!(
            "{head} {} {tail}",
            values_rows(fixed.len() + 1, chunk.len(), width)
        );
        let mut args = fixed.to_vec();
        args.extend(chunk.iter().flatten().cloned());
        if tail.contains("RETURNING") {
            let r = tx.rows(&sql, args).await?;
            affected += r.len() as u64;
            returned.extend(r);
        } else {
            affected += tx.exec(&sql, args).await?;
        }
    }
    Ok((affected, returned))
}

/// `UPDATE {table} SET {assign} WHERE {filter} AND {key} IN (…) {returning}` for many keys at
/// once. In `assign`, `{case}` becomes `CASE {key} WHEN $k THEN $v … END`, the per-key value.
/// Keys are matched with `IN` on the primary key, which every planner turns into index
/// lookups (an `UPDATE … FROM (VALUES …)` join can become a scan of a large table).
pub(crate) async fn update_each<S: Sql>(
    tx: &mut S,
    table: &str,
    key: &str,
    assign: &str,
    filter: &str,
    returning: &str,
    fixed: &[Val],
    pairs: &[(Val, Val)],
) -> Result<(u64, Vec<Vec<Val>>), StoreError> {
    let mut affected = 0;
    let mut returned = Vec::new();
    for chunk in pairs.chunks((MAX_PARAMS - fixed.len()) / 4) {
        // A repeated key matches its first WHEN and counts once in IN (…).
        let chunk = &pad(chunk);
        let base = fixed.len() + 1;
        let case: String = (0..chunk.len())
            .map(|i| format!(" WHEN ${} THEN ${}", base + 2 * i, base + 2 * i + 1))
            .collect();
        let keys: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", base + 2 * i))
            .collect();
        let sql = format!(
            "UPDATE {table} SET {} WHERE {filter} AND {key} IN ({}) {returning}",
            assign.replace("{case}", &format!("CASE {key}{case} END")),
            keys.join(", ")
        );
        let mut args = fixed.to_vec();
        for (k, v) in chunk {
            args.push(k.clone());
            args.push(v.clone());
        }
        if returning.is_empty() {
            affected += tx.exec(&sql, args).await?;
        } else {
            let r = tx.rows(&sql, args).await?;
            affected += r.len() as u64;
            returned.extend(r);
        }
    }
    Ok((affected, returned))
}

/// `… IN ($k, …)` over text values, with `fixed` bound first.
pub(crate) async fn rows_in<S: Sql>(
    tx: &mut S,
    sql_before: &str,
    sql_after: &str,
    fixed: Vec<Val>,
    values: &[String],
) -> Result<Vec<Vec<Val>>, StoreError> {
    let mut out = Vec::new();
    for chunk in values.chunks((MAX_PARAMS - fixed.len()) / 2) {
        let chunk = &pad(chunk);
        let sql = format!(
            "{sql_before} ({}) {sql_after}",
            placeholders(fixed.len() + 1, chunk.len())
        );
        let mut args = fixed.clone();
        args.extend(chunk.iter().map(Val::from));
        out.extend(tx.rows(&sql, args).await?);
    }
    Ok(out)
}

async fn exec_in<S: Sql>(
    tx: &mut S,
    sql_before: &str,
    fixed: Vec<Val>,
    values: &[String],
) -> Result<u64, StoreError> {
    let mut n = 0;
    for chunk in values.chunks((MAX_PARAMS - fixed.len()) / 2) {
        let chunk = &pad(chunk);
        let sql = format!(
            "{sql_before} ({})",
            placeholders(fixed.len() + 1, chunk.len())
        );
        let mut args = fixed.clone();
        args.extend(chunk.iter().map(Val::from));
        n += tx.exec(&sql, args).await?;
    }
    Ok(n)
}

/// Places `batch` (one tenant; distinct idempotency keys, tokens and carts) inside the caller's
/// transaction. `Err` means the batch must be rolled back and placed again order by order.
pub(crate) async fn place_set<S: Sql>(
    tx: &mut S,
    tenant: &str,
    batch: Vec<NewOrder>,
    lock_rows: bool,
) -> Result<Vec<Result<Order, PlaceError>>, StoreError> {
    let n = batch.len();
    let now = now_ms();
    let mut results: Vec<Option<Result<Order, PlaceError>>> = (0..n).map(|_| None).collect();
    let mut skus: Vec<String> = batch
        .iter()
        .flat_map(|b| b.order.lines.iter().map(|l| l.sku.to_string()))
        .collect();
    skus.sort_unstable();
    skus.dedup();
    let mut codes: Vec<String> = batch
        .iter()
        .flat_map(|b| b.order.promotions.iter().map(|p| p.code.clone()))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let mut keys: Vec<String> = batch.iter().map(|b| b.idempotency_key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();

    // 1–3. Lock what the batch will change, in the one global order, and read the claims and
    //      current prices. PostgreSQL does it in one statement while the hot rows are locked;
    //      SQLite (one writer, nothing to lock) reads with plain statements.
    let fast = if lock_rows {
        lock_and_read(tx, tenant, now, &batch, &skus, &codes, &keys).await?
    } else {
        None
    };
    let (claims, price_rows, prefetched) = match fast {
        Some(read) => (read.claims, read.prices, Some((read.network, read.holds))),
        None => {
            let lock = if lock_rows { "FOR UPDATE" } else { "" };
            if lock_rows {
                rows_in(
                    tx,
                    "SELECT 1 FROM stock WHERE tenant_id = $1 AND sku IN",
                    "ORDER BY sku, location_id FOR UPDATE",
                    vec![tenant.into()],
                    &skus,
                )
                .await?;
                if !codes.is_empty() {
                    rows_in(
                        tx,
                        "SELECT 1 FROM promotions WHERE tenant_id = $1 AND code IN",
                        "ORDER BY code FOR UPDATE",
                        vec![tenant.into()],
                        &codes,
                    )
                    .await?;
                }
            }
            let claims = rows_in(
                tx,
                "SELECT key, claim_id, status FROM idempotency WHERE tenant_id = $1 AND key IN",
                &format!("ORDER BY key {lock}"),
                vec![tenant.into()],
                &keys,
            )
            .await?;
            if lock_rows {
                lock_in_order(tx, tenant, &batch).await?;
            }
            let prices = rows_in(tx, "SELECT sku, price_amount, currency, hazmat, cold_chain, weight_grams FROM products WHERE tenant_id = $1 AND sku IN", "", vec![tenant.into()], &skus).await?;
            (claims, prices, None)
        }
    };

    // 2. Each order's idempotency key must still be claimed by this very attempt (the service
    //    claimed it before calling the gateway; an abandoned claim can be taken over by a retry
    //    once its lease ran out, and then this attempt must not place anything).
    let mut held: HashMap<String, (Option<String>, i64)> = HashMap::with_capacity(claims.len());
    for r in &claims {
        held.insert(r[0].text()?, (r[1].opt_text()?, r[2].int()?));
    }
    for (i, b) in batch.iter().enumerate() {
        let ours = held.get(&b.idempotency_key).is_some_and(|(claim, status)| {
            *status == 0 && claim.as_deref() == Some(b.claim_id.as_str())
        });
        if !ours {
            results[i] = Some(Err(PlaceError::ClaimLost));
        }
    }

    // 3. Prices must be the ones each order was priced with.
    let mut prices: HashMap<String, Money> = HashMap::new();
    let mut needs: HashMap<String, Capabilities> = HashMap::new();
    for r in &price_rows {
        if let Ok(c) = ordo_domain::Currency::parse(&r[2].text()?) {
            prices.insert(r[0].text()?, Money::new(r[1].int()?, c));
        }
        needs.insert(
            r[0].text()?,
            Capabilities {
                hazmat: r[3].int()? != 0,
                cold_chain: r[4].int()? != 0,
                oversize: ordo_domain::network::is_oversize(r[5].opt_int()?),
            },
        );
    }
    for (i, b) in batch.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        let moved: Vec<(Sku, Money, Option<Money>)> = b
            .order
            .lines
            .iter()
            .filter(|l| prices.get(l.sku.as_str()) != Some(&l.unit_price))
            .map(|l| {
                (
                    l.sku.clone(),
                    l.unit_price,
                    prices.get(l.sku.as_str()).copied(),
                )
            })
            .collect();
        if !moved.is_empty() {
            results[i] = Some(Err(PlaceError::PriceMoved(moved)));
        }
    }

    // 4. Each token pays for one order only.
    let mut token_pairs: Vec<(String, String)> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| results[*i].is_none())
        .flat_map(|(_, b)| {
            b.order
                .payments
                .iter()
                .map(move |t| (t.token.clone(), b.order.id.to_string()))
        })
        .collect();
    token_pairs.sort_unstable();
    let token_pairs: Vec<(Val, Val)> = token_pairs
        .into_iter()
        .map(|(t, o)| (Val::S(t), Val::S(o)))
        .collect();
    let (_, used_rows) = update_each(
        tx,
        "payment_tokens",
        "token",
        "order_id = {case}",
        "tenant_id = $1 AND order_id IS NULL",
        "RETURNING token",
        &[tenant.into()],
        &token_pairs,
    )
    .await?;
    let now_ours: HashSet<String> = used_rows
        .iter()
        .map(|r| r[0].text())
        .collect::<Result<_, _>>()?;
    for (i, b) in batch.iter().enumerate() {
        if results[i].is_none() {
            if let Some(k) = b
                .order
                .payments
                .iter()
                .position(|t| !now_ours.contains(&t.token))
            {
                results[i] = Some(Err(PlaceError::TokenUsed(k)));
            }
        }
    }

    // 4b. A cart becomes an order once.
    let mut cart_pairs: Vec<(String, String)> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| results[*i].is_none())
        .filter_map(|(_, b)| b.order.cart_id.clone().map(|c| (c, b.order.id.to_string())))
        .collect();
    cart_pairs.sort_unstable();
    let cart_pairs: Vec<(Val, Val)> = cart_pairs
        .into_iter()
        .map(|(c, o)| (Val::S(c), Val::S(o)))
        .collect();
    if !cart_pairs.is_empty() {
        let (_, got) = update_each(
            tx,
            "carts",
            "id",
            "order_id = {case}",
            "tenant_id = $1 AND order_id IS NULL",
            "RETURNING id",
            &[tenant.into()],
            &cart_pairs,
        )
        .await?;
        let got: HashSet<String> = got.iter().map(|r| r[0].text()).collect::<Result<_, _>>()?;
        for (i, b) in batch.iter().enumerate() {
            if let (None, Some(c)) = (&results[i], &b.order.cart_id) {
                if !got.contains(c) {
                    results[i] = Some(Err(PlaceError::CartOrdered(c.clone())));
                }
            }
        }
    }

    // 5. Load what the checks need: promotions, past redemptions, locked stock levels.
    let mut promos: HashMap<String, (Promotion, i64)> = HashMap::new();
    let mut customer_uses: HashMap<(String, String), i64> = HashMap::new();
    if !codes.is_empty() {
        for r in rows_in(
            tx,
            "SELECT code, body, times_used FROM promotions WHERE tenant_id = $1 AND code IN",
            "",
            vec![tenant.into()],
            &codes,
        )
        .await?
        {
            let p: Promotion = serde_json::from_str(&r[1].text()?).map_err(corrupt)?;
            promos.insert(r[0].text()?, (p, r[2].int()?));
        }
        for r in rows_in(
            tx,
            "SELECT code, customer_key, COUNT(*) FROM promotion_redemptions WHERE tenant_id = $1 AND code IN",
            "GROUP BY code, customer_key",
            vec![tenant.into()],
            &codes,
        )
        .await?
        {
            customer_uses.insert((r[0].text()?, r[1].text()?), r[2].int()?);
        }
    }
    let mut levels: HashMap<String, Vec<(LocationId, i64)>> = HashMap::new();
    for r in rows_in(
        tx,
        "SELECT sku, location_id, on_hand - reserved - held - safety_stock FROM stock WHERE tenant_id = $1 AND sku IN",
        "",
        vec![tenant.into()],
        &skus,
    )
    .await?
    {
        let loc = LocationId::parse(&r[1].text()?).map_err(|_| corrupt("location id"))?;
        levels.entry(r[0].text()?).or_default().push((loc, r[2].int()?));
    }

    // Checkout holds of the batch's carts (`POST /v1/carts/{id}/hold`): an order consumes its
    // cart's hold rows of its own SKUs (their units are its to route; what it does not use goes
    // back to everyone). Rows of SKUs the order no longer has stay until they expire.
    let (_, cart_ids, _) = batch_keys(&batch);
    let (network_rows, hold_rows) = match prefetched {
        Some((network, holds)) => (Some(network), holds),
        None if cart_ids.is_empty() => (None, Vec::new()),
        None => {
            let rows = rows_in(tx, "SELECT cart_id, sku, location_id, quantity FROM stock_holds WHERE tenant_id = $1 AND cart_id IN", "ORDER BY cart_id, sku, location_id", vec![tenant.into()], &cart_ids).await?;
            (None, rows)
        }
    };
    let mut holds: HashMap<String, Vec<(String, LocationId, i64)>> = HashMap::new();
    for r in &hold_rows {
        let loc = LocationId::parse(&r[2].text()?).map_err(|_| corrupt("location id"))?;
        holds
            .entry(r[0].text()?)
            .or_default()
            .push((r[1].text()?, loc, r[3].int()?));
    }
    let Some(fallback_currency) = batch.first().map(|b| b.order.totals.total.currency) else {
        return Ok(Vec::new());
    };
    let network_rows = match network_rows {
        Some(rows) => rows,
        None => routing::NetworkRows::read(tx, tenant, now).await?,
    };
    let mut network = Network::from_rows(network_rows, now, needs, fallback_currency)?;

    // 6. One pass in arrival order: an order's promotion uses and reservations count against
    //    its batch-mates only if the order passes every check.
    let mut promo_uses: HashMap<String, i64> = HashMap::new();
    let mut redemptions: Vec<Vec<Val>> = Vec::new();
    let mut allocations: Vec<Vec<Allocation>> = vec![Vec::new(); n];
    let mut decisions: Vec<Option<(String, String)>> = vec![None; n];
    // Per stock row: units the round reserves, and held units it releases.
    let mut taken_total: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut consumed: Vec<(String, String, String)> = Vec::new();
    for (i, b) in batch.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        let mut failure = None;
        for p in &b.order.promotions {
            let Some((promo, used)) = promos.get(&p.code) else {
                failure = Some(PlaceError::PromotionExhausted(p.code.clone()));
                break;
            };
            // Every rule of the code is checked again at commit, against the locked usage count
            // plus this batch's earlier redemptions: window, minimum subtotal, currency, limits.
            let mut current = promo.clone();
            current.times_used = used + promo_uses.get(&p.code).copied().unwrap_or(0);
            let by_customer = customer_uses
                .get(&(p.code.clone(), b.customer_key.clone()))
                .copied()
                .unwrap_or(0);
            match current.check(b.order.totals.subtotal, now, by_customer) {
                Ok(()) => {}
                Err(PromoRejection::UsageLimitReached) => {
                    failure = Some(PlaceError::PromotionExhausted(p.code.clone()));
                    break;
                }
                Err(PromoRejection::CustomerLimitReached) => {
                    failure = Some(PlaceError::CustomerLimitReached(p.code.clone()));
                    break;
                }
                Err(reason) => {
                    failure = Some(PlaceError::PromotionInvalid(p.code.clone(), reason));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            results[i] = Some(Err(e));
            continue;
        }
        // Route the order against the stock its earlier batch-mates left: the cheapest plan
        // under the hard rules, or the lines no plan can fill.
        let own: Vec<(String, LocationId, i64)> = b
            .order
            .cart_id
            .as_ref()
            .and_then(|c| holds.get(c))
            .map(|rows| {
                rows.iter()
                    .filter(|(s, _, _)| b.order.lines.iter().any(|l| l.sku.as_str() == s))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let routed = if own.is_empty() {
            network.route(&b.order.shipments, &levels)
        } else {
            let mut mine = levels.clone();
            add_units(&mut mine, &own);
            network.route(&b.order.shipments, &mine)
        };
        let (decision, input) = match routed {
            Ok(routed) => routed,
            Err(e) => {
                results[i] = Some(Err(e));
                continue;
            }
        };
        let mine = decision.allocations();
        // Every check passed: the order's uses and reservations now count; its held units are
        // released (those it did not use become everyone's).
        add_units(&mut levels, &own);
        for (sku, loc, q) in &own {
            taken_total
                .entry((sku.clone(), loc.to_string()))
                .or_default()
                .1 += q;
            consumed.push((
                b.order.cart_id.clone().unwrap_or_default(),
                sku.clone(),
                loc.to_string(),
            ));
        }
        for a in &mine {
            add_units(
                &mut levels,
                &[(a.sku.to_string(), a.location_id.clone(), -a.quantity)],
            );
            taken_total
                .entry((a.sku.to_string(), a.location_id.to_string()))
                .or_default()
                .0 += a.quantity;
        }
        decisions[i] = Some(routing::record(
            &b.order.id.to_string(),
            now,
            decision,
            input,
        )?);
        allocations[i] = mine;
        for p in &b.order.promotions {
            *promo_uses.entry(p.code.clone()).or_default() += 1;
            *customer_uses
                .entry((p.code.clone(), b.customer_key.clone()))
                .or_default() += 1;
            redemptions.push(vec![
                Val::from(&p.code),
                Val::from(&b.customer_key),
                b.order.id.to_string().into(),
            ]);
        }
    }

    // 7. Orders that failed a check leave nothing behind: their claims are released (a retry is
    //    evaluated afresh) and their token and cart claims undone. A lost claim is not ours.
    let failed_keys: Vec<String> = batch
        .iter()
        .enumerate()
        .filter(
            |(i, _)| matches!(&results[*i], Some(Err(e)) if !matches!(e, PlaceError::ClaimLost)),
        )
        .map(|(_, b)| b.idempotency_key.clone())
        .collect();
    if !failed_keys.is_empty() {
        exec_in(
            tx,
            "DELETE FROM idempotency WHERE tenant_id = $1 AND status = 0 AND key IN",
            vec![tenant.into()],
            &failed_keys,
        )
        .await?;
    }
    let failed_orders: Vec<String> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(&results[*i], Some(Err(_))))
        .map(|(_, b)| b.order.id.to_string())
        .collect();
    if !failed_orders.is_empty() {
        exec_in(
            tx,
            "UPDATE payment_tokens SET order_id = NULL WHERE tenant_id = $1 AND order_id IN",
            vec![tenant.into()],
            &failed_orders,
        )
        .await?;
        exec_in(
            tx,
            "UPDATE carts SET order_id = NULL WHERE tenant_id = $1 AND order_id IN",
            vec![tenant.into()],
            &failed_orders,
        )
        .await?;
    }

    // 8. Write the survivors: stock, promotions, orders and their rows, authorizations, answers.
    let mut stock_rows: Vec<(&(String, String), &(i64, i64))> = taken_total.iter().collect();
    stock_rows.sort();
    let releases = stock_rows.iter().any(|(_, (_, h))| *h > 0);
    // Per row: (sku, location, reserve) — or, when the round releases held units, (sku, location,
    // reserve, release, reserve − release).
    let width = if releases { 5 } else { 3 };
    let mut changed: Vec<StockChangeRow> = Vec::with_capacity(stock_rows.len());
    for chunk in stock_rows.chunks(MAX_PARAMS / width - 1) {
        let p = |i: usize, k: usize| 3 + width * i + k;
        let case = |k: usize| -> String {
            (0..chunk.len())
                .map(|i| {
                    format!(
                        " WHEN sku = ${} AND location_id = ${} THEN ${}",
                        p(i, 0),
                        p(i, 1),
                        p(i, k)
                    )
                })
                .collect()
        };
        let keys: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", p(i, 0), p(i, 1)))
            .collect();
        let (set, need) = if releases {
            (
                format!(
                    "reserved = reserved + CASE{} END, held = held - CASE{} END",
                    case(2),
                    case(3)
                ),
                case(4),
            )
        } else {
            (
                format!("reserved = reserved + CASE{} END", case(2)),
                case(2),
            )
        };
        // A row whose net change releases units needs no free units (a safety stock raised
        // since the hold may have left it below zero).
        let free = if releases {
            format!(
                "(CASE{need} END <= 0 OR on_hand - reserved - held - safety_stock >= CASE{need} END)"
            )
        } else {
            format!("on_hand - reserved - held - safety_stock >= CASE{need} END")
        };
        // $1 tenant, $2 now, then the rows' values.
        let sql = format!(
            "UPDATE stock SET {set}, updated_at_ms = $2 \
             WHERE tenant_id = $1 AND (sku, location_id) IN ({}) AND {free} \
             RETURNING sku, location_id, on_hand, reserved, held, safety_stock",
            keys.join(", ")
        );
        let mut args: Vec<Val> = vec![tenant.into(), now.into()];
        for ((sku, loc), (reserve, release)) in chunk {
            args.extend([Val::from(sku), Val::from(loc), Val::I(*reserve)]);
            if releases {
                args.extend([Val::I(*release), Val::I(reserve - release)]);
            }
        }
        for r in tx.rows(&sql, args).await? {
            changed.push(StockChangeRow {
                sku: r[0].text()?,
                location_id: r[1].text()?,
                on_hand: r[2].int()?,
                reserved: r[3].int()?,
                held: r[4].int()?,
                safety_stock: r[5].int()?,
            });
        }
    }
    if changed.len() != stock_rows.len() {
        return Err(corrupt("stock changed under the batch's locks"));
    }
    // The holds the placed orders consumed (their carts are locked; stock rows first).
    let consumed: Vec<&(String, String, String)> = consumed.iter().collect();
    for chunk in consumed.chunks(MAX_PARAMS / 3 - 1) {
        let keys: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i))
            .collect();
        let mut args: Vec<Val> = vec![tenant.into()];
        for (cart, sku, loc) in chunk {
            args.extend([Val::from(cart), Val::from(sku), Val::from(loc)]);
        }
        tx.exec(&format!("DELETE FROM stock_holds WHERE tenant_id = $1 AND (cart_id, sku, location_id) IN ({})", keys.join(", ")), args).await?;
    }
    if !promo_uses.is_empty() {
        let pairs: Vec<(Val, Val)> = promo_uses
            .iter()
            .map(|(c, k)| (Val::from(c), Val::I(*k)))
            .collect();
        update_each(
            tx,
            "promotions",
            "code",
            "times_used = times_used + {case}",
            "tenant_id = $1",
            "",
            &[tenant.into()],
            &pairs,
        )
        .await?;
        let rows: Vec<Vec<Val>> = redemptions
            .into_iter()
            .map(|mut r| {
                r.insert(0, tenant.into());
                r
            })
            .collect();
        many(
            tx,
            "INSERT INTO promotion_redemptions (tenant_id, code, customer_key, order_id) VALUES",
            "",
            &[],
            &rows,
        )
        .await?;
    }

    let decision_rows: Vec<Vec<Val>> = (0..n)
        .filter(|i| results[*i].is_none())
        .filter_map(|i| {
            decisions[i].take().map(|(id, body)| {
                vec![
                    tenant.into(),
                    Val::S(id),
                    batch[i].order.id.to_string().into(),
                    now.into(),
                    Val::S(body),
                ]
            })
        })
        .collect();
    let mut placed: Vec<(usize, Order, String, Vec<String>)> = Vec::new();
    for (i, b) in batch.into_iter().enumerate() {
        if results[i].is_none() {
            let mut order = b.order;
            order.allocations = std::mem::take(&mut allocations[i]);
            // Placed, confirmed (every tender authorized) and allocated, in this one commit.
            order.fulfillments = ordo_domain::lifecycle::fulfillments_for(&order.allocations);
            order.status = ordo_domain::OrderStatus::Allocated;
            placed.push((i, order, b.idempotency_key, b.authorization_ids));
        }
    }
    // Orders, drawing a new number on the rare collision.
    loop {
        let rows: Vec<Vec<Val>> = placed
            .iter()
            .map(|(_, o, _, _)| {
                vec![
                    tenant.into(),
                    o.id.to_string().into(),
                    o.number.as_str().into(),
                    o.status.as_str().into(),
                    Val::from(&o.channel),
                    o.customer.email().into(),
                    o.totals.total.currency.code().into(),
                    o.totals.total.amount.into(),
                    serde_json::to_string(o)
                        .map_err(corrupt)
                        .map(Val::S)
                        .unwrap_or(Val::NullText),
                    now.into(),
                ]
            })
            .collect();
        let (_, inserted) = many(
            tx,
            "INSERT INTO orders (tenant_id, id, number, status, channel, email, currency, total, body, created_at_ms) VALUES",
            "ON CONFLICT (tenant_id, number) DO NOTHING RETURNING id",
            &[],
            &rows,
        )
        .await?;
        let inserted: HashSet<String> = inserted
            .iter()
            .map(|r| r[0].text())
            .collect::<Result<_, _>>()?;
        let mut again = Vec::new();
        for p in placed.iter_mut() {
            if !inserted.contains(&p.1.id.to_string()) {
                p.1.number = OrderNumber::generate();
                again.push(p.1.id);
            }
        }
        if again.is_empty() {
            break;
        }
        // Retry only the collided ones: drop the inserted from this loop's view.
        let (retry, done): (Vec<_>, Vec<_>) =
            placed.into_iter().partition(|p| again.contains(&p.1.id));
        for (i, o, k, a) in done {
            results[i] = Some(Ok(o.clone()));
            write_rest(tx, tenant, now, &[(i, o, k, a)]).await?;
        }
        placed = retry;
    }
    write_rest(tx, tenant, now, &placed).await?;
    // The packages the round adds to capacity-limited nodes' days (locked after authorizations).
    network.write_loads(tx, tenant).await?;
    // The changed stock rows, to the tenant's change feed: the last lock of the round; the
    // decisions travel in the same statement on PostgreSQL (one round trip less under the locks).
    changed.sort_by(|a, b| (&a.sku, &a.location_id).cmp(&(&b.sku, &b.location_id)));
    let decisions = (
        "INSERT INTO routing_decisions (tenant_id, id, order_id, created_at_ms, body) VALUES",
        &decision_rows[..],
    );
    feed::append_with(tx, tenant, now, &changed, lock_rows, Some(decisions)).await?;
    for (i, o, _, _) in placed {
        results[i] = Some(Ok(o));
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| corrupt("an order of the batch got no outcome")))
        .collect()
}

/// The batch's payment tokens, carts and authorization ids, each sorted and without repeats.
fn batch_keys(batch: &[NewOrder]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let sorted = |mut v: Vec<String>| {
        v.sort_unstable();
        v.dedup();
        v
    };
    (
        sorted(
            batch
                .iter()
                .flat_map(|b| b.order.payments.iter().map(|p| p.token.clone()))
                .collect(),
        ),
        sorted(
            batch
                .iter()
                .filter_map(|b| b.order.cart_id.clone())
                .collect(),
        ),
        sorted(
            batch
                .iter()
                .flat_map(|b| b.authorization_ids.iter().cloned())
                .collect(),
        ),
    )
}

/// Adds `q` units (negative: takes them) of each (sku, location) to `levels`.
fn add_units(
    levels: &mut HashMap<String, Vec<(LocationId, i64)>>,
    units: &[(String, LocationId, i64)],
) {
    for (sku, loc, q) in units {
        let at = levels.entry(sku.clone()).or_default();
        match at.iter_mut().find(|(id, _)| id == loc) {
            Some(l) => l.1 += q,
            None => at.push((loc.clone(), *q)),
        }
    }
}

/// Lines, allocations, tenders, authorizations, outbox events and idempotency answers of
/// orders already inserted.
async fn write_rest<S: Sql>(
    tx: &mut S,
    tenant: &str,
    now: i64,
    placed: &[(usize, Order, String, Vec<String>)],
) -> Result<(), StoreError> {
    if placed.is_empty() {
        return Ok(());
    }
    let t = || Val::from(tenant);
    let lines: Vec<Vec<Val>> = placed
        .iter()
        .flat_map(|(_, o, _, _)| {
            o.lines.iter().map(move |l| {
                vec![
                    t(),
                    o.id.to_string().into(),
                    l.line_no.into(),
                    l.sku.as_str().into(),
                    l.quantity.into(),
                    l.unit_price.amount.into(),
                ]
            })
        })
        .collect();
    many(
        tx,
        "INSERT INTO order_lines (tenant_id, order_id, line_no, sku, quantity, unit_price) VALUES",
        "",
        &[],
        &lines,
    )
    .await?;
    // One row per order, SKU and location (units for several addresses added up).
    let allocs: Vec<Vec<Val>> = placed
        .iter()
        .flat_map(|(_, o, _, _)| {
            let mut per: std::collections::BTreeMap<(&str, &str), i64> =
                std::collections::BTreeMap::new();
            for a in &o.allocations {
                *per.entry((a.sku.as_str(), a.location_id.as_str()))
                    .or_default() += a.quantity;
            }
            per.into_iter().map(move |((sku, loc), q)| {
                vec![
                    t(),
                    o.id.to_string().into(),
                    sku.into(),
                    loc.into(),
                    q.into(),
                ]
            })
        })
        .collect();
    many(
        tx,
        "INSERT INTO order_allocations (tenant_id, order_id, sku, location_id, quantity) VALUES",
        "",
        &[],
        &allocs,
    )
    .await?;
    let fulfillments: Vec<Vec<Val>> = placed
        .iter()
        .flat_map(|(_, o, _, _)| {
            o.fulfillments.iter().map(move |f| {
                vec![
                    t(),
                    Val::from(&f.id),
                    o.id.to_string().into(),
                    f.location_id.as_str().into(),
                    (f.address_index as i64).into(),
                    f.status.as_str().into(),
                    serde_json::to_string(&f.lines)
                        .map(Val::S)
                        .unwrap_or(Val::NullText),
                    now.into(),
                    now.into(),
                ]
            })
        })
        .collect();
    many(
        tx,
        "INSERT INTO fulfillments (tenant_id, id, order_id, location_id, address_index, status, lines, created_at_ms, updated_at_ms) VALUES",
        "",
        &[],
        &fulfillments,
    )
    .await?;
    let pays: Vec<Vec<Val>> = placed
        .iter()
        .flat_map(|(_, o, _, _)| {
            o.payments.iter().enumerate().map(move |(k, p)| {
                vec![
                    t(),
                    o.id.to_string().into(),
                    (k as i64).into(),
                    Val::from(&p.token),
                    p.amount.amount.into(),
                    p.amount.currency.code().into(),
                    Val::from(&p.authorization_id),
                    p.status.as_str().into(),
                ]
            })
        })
        .collect();
    many(
        tx,
        "INSERT INTO order_payments (tenant_id, order_id, tender_no, token, amount, currency, authorization_id, status) VALUES",
        "",
        &[],
        &pays,
    )
    .await?;
    let mut auths: Vec<(String, String)> = placed
        .iter()
        .flat_map(|(_, o, _, ids)| ids.iter().map(move |id| (id.clone(), o.id.to_string())))
        .collect();
    auths.sort_unstable();
    let auths: Vec<(Val, Val)> = auths
        .into_iter()
        .map(|(a, o)| (Val::S(a), Val::S(o)))
        .collect();
    let (attached, _) = update_each(
        tx,
        "payment_authorizations",
        "id",
        &format!(
            "status = '{}', order_id = {{case}}, updated_at_ms = $2",
            AuthorizationStatus::Attached.as_str()
        ),
        &format!(
            "tenant_id = $1 AND status = '{}'",
            AuthorizationStatus::Pending.as_str()
        ),
        "",
        &[tenant.into(), now.into()],
        &auths,
    )
    .await?;
    if attached != auths.len() as u64 {
        // Recovery voided one of them: abort the batch; placed again as batches of one, the
        // order it belongs to fails with `AuthorizationLost` (see `place_set`).
        return Err(StoreError::AuthorizationLost);
    }
    let bodies: Vec<String> = placed
        .iter()
        .map(|(_, o, _, _)| serde_json::to_string(o).map_err(corrupt))
        .collect::<Result<_, _>>()?;
    let events: Vec<Vec<Val>> = placed
        .iter()
        .zip(&bodies)
        .map(|((_, o, _, _), body)| {
            // The order's first event: number 1 of its subject, no counter row (see `events`).
            crate::events::row(
                tenant,
                ordo_domain::events::EventType::ORDER_PLACED,
                &o.id.to_string(),
                1,
                body.clone(),
                now,
            )
        })
        .collect();
    many(tx, crate::events::INSERT_HEAD, "", &[], &events).await?;
    let answers: Vec<(Val, Val)> = placed
        .iter()
        .zip(&bodies)
        .map(|((_, _, key, _), body)| (Val::from(key), Val::from(body)))
        .collect();
    update_each(
        tx,
        "idempotency",
        "key",
        "status = 201, response = {case}",
        "tenant_id = $1",
        "",
        &[tenant.into()],
        &answers,
    )
    .await?;
    Ok(())
}

/// Separates the values of one list parameter (never part of a SKU, code, key, token or id).
const LIST_SEPARATOR: char = '\u{1f}';

/// PostgreSQL: locks stock → promotions → idempotency rows → tokens → carts → authorizations,
/// each sorted, and reads the batch's claims and prices — one statement, one round trip, the same
/// text for every batch (lists travel as one separated parameter each). The target list's
/// subqueries run left to right, and a CTE with `FOR UPDATE` is materialized, so the locks are
/// taken in that order. Returns `None` when a value contains the separator (the caller then
/// takes the locks statement by statement).
async fn lock_and_read<S: Sql>(
    tx: &mut S,
    tenant: &str,
    now: i64,
    batch: &[NewOrder],
    skus: &[String],
    codes: &[String],
    keys: &[String],
) -> Result<Option<LockedRead>, StoreError> {
    let (tokens, carts, auths) = batch_keys(batch);
    let lists = [skus, codes, keys, &tokens[..], &carts[..], &auths[..]];
    if lists
        .iter()
        .any(|l| l.iter().any(|v| v.contains(LIST_SEPARATOR)))
    {
        return Ok(None);
    }
    let mut args: Vec<Val> = vec![tenant.into()];
    args.extend(
        lists
            .iter()
            .map(|l| Val::S(l.join(&LIST_SEPARATOR.to_string()))),
    );
    args.push(Val::S(routing::earliest_day(now)));
    let rows = tx.rows(LOCK_AND_READ, args).await?;
    let row = rows
        .first()
        .ok_or_else(|| corrupt("the lock statement returned no row"))?;
    let decode = |v: &Val| -> Result<Vec<Vec<Val>>, StoreError> {
        let parsed: Vec<Vec<serde_json::Value>> = serde_json::from_str(&v.text()?)
            .map_err(|e| corrupt(format!("lock statement: {e}")))?;
        Ok(parsed
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => Val::S(s),
                        serde_json::Value::Number(n) => n
                            .as_i64()
                            .map(Val::I)
                            .or_else(|| n.as_f64().map(Val::F))
                            .unwrap_or(Val::NullInt),
                        _ => Val::NullText,
                    })
                    .collect()
            })
            .collect())
    };
    let rules = decode(&row[8])?;
    Ok(Some(LockedRead {
        claims: decode(&row[2])?,
        prices: decode(&row[6])?,
        network: routing::NetworkRows {
            locations: decode(&row[7])?,
            rules: rules
                .first()
                .map(|r| Ok::<_, StoreError>((r[0].int()?, r[1].text()?)))
                .transpose()?,
            loads: decode(&row[9])?,
        },
        holds: decode(&row[10])?,
    }))
}

/// What the PostgreSQL lock statement reads besides taking the locks.
struct LockedRead {
    claims: Vec<Vec<Val>>,
    prices: Vec<Vec<Val>>,
    network: routing::NetworkRows,
    /// (cart_id, sku, location_id, quantity) of the batch's carts' holds.
    holds: Vec<Vec<Val>>,
}

const LOCK_AND_READ: &str = "WITH \
    s AS MATERIALIZED (SELECT 1 FROM stock WHERE tenant_id = $1 AND sku = ANY(string_to_array($2, chr(31))) ORDER BY sku, location_id FOR UPDATE), \
    p AS MATERIALIZED (SELECT 1 FROM promotions WHERE tenant_id = $1 AND code = ANY(string_to_array($3, chr(31))) ORDER BY code FOR UPDATE), \
    k AS MATERIALIZED (SELECT key, claim_id, status FROM idempotency WHERE tenant_id = $1 AND key = ANY(string_to_array($4, chr(31))) ORDER BY key FOR UPDATE), \
    t AS MATERIALIZED (SELECT 1 FROM payment_tokens WHERE tenant_id = $1 AND token = ANY(string_to_array($5, chr(31))) ORDER BY token FOR UPDATE), \
    c AS MATERIALIZED (SELECT 1 FROM carts WHERE tenant_id = $1 AND id = ANY(string_to_array($6, chr(31))) ORDER BY id FOR UPDATE), \
    a AS MATERIALIZED (SELECT 1 FROM payment_authorizations WHERE tenant_id = $1 AND id = ANY(string_to_array($7, chr(31))) ORDER BY id FOR UPDATE) \
    SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM p), \
    (SELECT coalesce(json_agg(json_build_array(key, claim_id, status)), '[]')::text FROM k), \
    (SELECT count(*) FROM t), (SELECT count(*) FROM c), (SELECT count(*) FROM a), \
    (SELECT coalesce(json_agg(json_build_array(sku, price_amount, currency, hazmat, cold_chain, weight_grams)), '[]')::text FROM products WHERE tenant_id = $1 AND sku = ANY(string_to_array($2, chr(31)))), \
    (SELECT coalesce(json_agg(json_build_array(id, name, kind, lat, lon, country, ships_to, capabilities, daily_capacity, cutoff, timezone, \
       handling_cost, cost_per_100km, cost_currency, active) ORDER BY id), '[]')::text FROM locations WHERE tenant_id = $1), \
    (SELECT coalesce(json_agg(json_build_array(version, body)), '[]')::text FROM \
       (SELECT version, body FROM routing_rules WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1) r), \
    (SELECT coalesce(json_agg(json_build_array(location_id, day, packages)), '[]')::text FROM location_load WHERE tenant_id = $1 AND day >= $8), \
    (SELECT coalesce(json_agg(json_build_array(cart_id, sku, location_id, quantity) ORDER BY cart_id, sku, location_id), '[]')::text \
       FROM stock_holds WHERE tenant_id = $1 AND cart_id = ANY(string_to_array($6, chr(31))))";

/// Locks the batch's payment tokens, then carts, then authorizations, each sorted, with one
/// round trip (PostgreSQL).
async fn lock_in_order<S: Sql>(
    tx: &mut S,
    tenant: &str,
    batch: &[NewOrder],
) -> Result<(), StoreError> {
    let (tokens, carts, auths) = batch_keys(batch);
    let mut args: Vec<Val> = vec![tenant.into()];
    let mut ctes = Vec::new();
    let mut counts = Vec::new();
    for (name, table, key, values) in [
        ("t", "payment_tokens", "token", &tokens),
        ("c", "carts", "id", &carts),
        ("a", "payment_authorizations", "id", &auths),
    ] {
        if values.is_empty() || args.len() + values.len() > MAX_PARAMS {
            continue;
        }
        let values = pad(values);
        let list = placeholders(args.len() + 1, values.len());
        args.extend(values.iter().map(Val::from));
        ctes.push(format!("{name} AS (SELECT {key} FROM {table} WHERE tenant_id = $1 AND {key} IN ({list}) ORDER BY {key} FOR UPDATE)"));
        counts.push(format!("(SELECT count(*) FROM {name})"));
    }
    if ctes.is_empty() {
        return Ok(());
    }
    tx.rows(
        &format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", ")),
        args,
    )
    .await?;
    Ok(())
}
