//! The network a placement round routes over: the tenant's locations, its current routing rules
//! and each node's packages of its local day, read once per round inside the round's
//! transaction (after the stock rows are locked). The engine asks it to route each order against
//! the stock left by the order's batch-mates; the rules themselves are `ordo_domain::routing`.

use crate::catalog::{LOCATION_COLUMNS, location_row};
use crate::orders::{PlaceError, Shortage};
use crate::sql::{Row, Sql, Val};
use crate::{StoreError, corrupt};
use ordo_domain::routing::{
    self, Capabilities, Decision, DecisionRecord, LocalClock, ReasonCode, RoutingError,
    RoutingInput, SearchBudget, TenantRules,
};
use ordo_domain::{Currency, Location, LocationId, Money, ShipmentGroup, Sku};
use std::collections::{BTreeMap, HashMap};

/// The rows a network is built from: locations (`LOCATION_COLUMNS`), the newest rules (version,
/// body) and day loads (location, day, packages) from `earliest_day` on.
pub(crate) struct NetworkRows {
    pub locations: Vec<Row>,
    pub rules: Option<(i64, String)>,
    pub loads: Vec<Row>,
}

impl NetworkRows {
    pub(crate) async fn read<S: Sql>(
        tx: &mut S,
        tenant: &str,
        now_ms: i64,
    ) -> Result<NetworkRows, StoreError> {
        let sql =
            format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE tenant_id = $1 ORDER BY id");
        let locations = tx.rows(&sql, vec![tenant.into()]).await?;
        let rules = tx.rows("SELECT version, body FROM routing_rules WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", vec![tenant.into()]).await?;
        let rules = rules
            .first()
            .map(|r| Ok::<_, StoreError>((r[0].int()?, r[1].text()?)))
            .transpose()?;
        let loads = tx.rows("SELECT location_id, day, packages FROM location_load WHERE tenant_id = $1 AND day >= $2", vec![tenant.into(), earliest_day(now_ms).into()]).await?;
        Ok(NetworkRows {
            locations,
            rules,
            loads,
        })
    }
}

/// Stored rules (their JSON body) with the version they were stored under.
pub(crate) fn parse_rules(version: i64, body: &str) -> Result<TenantRules, StoreError> {
    let mut rules: TenantRules =
        serde_json::from_str(body).map_err(|e| corrupt(format!("routing rules: {e}")))?;
    rules.version = u32::try_from(version).map_err(|_| corrupt("routing rules version"))?;
    Ok(rules)
}

/// The earliest local date anywhere on Earth at `now_ms` (UTC−12): every node's "today" is on
/// or after it.
pub(crate) fn earliest_day(now_ms: i64) -> String {
    routing::local_clock(Some("Etc/GMT+12"), now_ms).day
}

pub(crate) struct Network {
    now_ms: i64,
    currency: Currency,
    rules: TenantRules,
    /// Nodes in the routing currency, with their local clocks, by id.
    nodes: Vec<(Location, LocalClock)>,
    /// Packages routed to each node on its local day so far, this round's orders included.
    loads: HashMap<LocationId, i64>,
    /// What each of the round's SKUs needs of a node.
    needs: HashMap<String, Capabilities>,
    /// Packages this round added per node (written with the round).
    added: BTreeMap<LocationId, i64>,
}

impl Network {
    /// The network of `tenant` at `now_ms` from its rows. `needs` are the round's SKUs'
    /// requirements; `fallback` the currency when the tenant has no rules and no locations.
    pub(crate) fn from_rows(
        rows: NetworkRows,
        now_ms: i64,
        needs: HashMap<String, Capabilities>,
        fallback: Currency,
    ) -> Result<Network, StoreError> {
        let locations: Vec<Location> = rows
            .locations
            .iter()
            .map(location_row)
            .collect::<Result<_, _>>()?;
        let rules = match rows.rules {
            Some((version, body)) => parse_rules(version, &body)?,
            None => {
                let currency = locations
                    .first()
                    .map_or(fallback, |l| l.handling_cost.currency);
                TenantRules {
                    version: 0,
                    cutoff_penalty: Money::new(0, currency),
                    rules: Vec::new(),
                }
            }
        };
        let currency = rules.cutoff_penalty.currency;
        let nodes: Vec<(Location, LocalClock)> = locations
            .into_iter()
            .filter(|l| {
                let same = l.handling_cost.currency == currency && l.cost_per_100km.currency == currency;
                if !same {
                    tracing::warn!(location = %l.id, %currency, "a location's costs are in another currency than the routing rules: it is left out of routing");
                }
                same
            })
            .map(|l| {
                let clock = routing::local_clock(l.timezone.as_deref(), now_ms);
                (l, clock)
            })
            .collect();
        let mut loads = HashMap::new();
        for r in &rows.loads {
            let (loc, day) = (r[0].text()?, r[1].text()?);
            if nodes
                .iter()
                .any(|(l, c)| l.id.as_str() == loc && c.day == day)
            {
                loads.insert(
                    LocationId::parse(&loc).map_err(|_| corrupt("location id"))?,
                    r[2].int()?,
                );
            }
        }
        Ok(Network {
            now_ms,
            currency,
            rules,
            nodes,
            loads,
            needs,
            added: BTreeMap::new(),
        })
    }

    /// Routes `order` against `levels` (units available per SKU and location, after the
    /// round's earlier orders). On success the plan's packages count towards the nodes' loads.
    pub(crate) fn route(
        &mut self,
        shipments: &[ShipmentGroup],
        levels: &HashMap<String, Vec<(LocationId, i64)>>,
    ) -> Result<(Decision, RoutingInput), PlaceError> {
        self.plan(shipments, levels, true)
    }

    /// Each node's local date (`YYYY-MM-DD`) by location id.
    pub(crate) fn days(&self) -> HashMap<String, String> {
        self.nodes
            .iter()
            .map(|(l, c)| (l.id.to_string(), c.day.clone()))
            .collect()
    }

    /// Routes; with `count` the plan's packages count towards the nodes' loads (a checkout hold
    /// plans without counting: nothing ships yet).
    pub(crate) fn plan(
        &mut self,
        shipments: &[ShipmentGroup],
        levels: &HashMap<String, Vec<(LocationId, i64)>>,
        count: bool,
    ) -> Result<(Decision, RoutingInput), PlaceError> {
        let needs = |sku: &Sku| self.needs.get(sku.as_str()).copied().unwrap_or_default();
        let (destinations, lines) =
            routing::order_demand(shipments, needs).map_err(PlaceError::Unroutable)?;
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (location, clock) in &self.nodes {
            let stock: BTreeMap<Sku, i64> = lines
                .iter()
                .map(|l| {
                    let at = levels
                        .get(l.sku.as_str())
                        .and_then(|v| v.iter().find(|(id, _)| *id == location.id))
                        .map_or(0, |(_, q)| (*q).max(0));
                    (l.sku.clone(), at)
                })
                .collect();
            let load = self.loads.get(&location.id).copied().unwrap_or(0);
            match location.routing_node(clock, self.now_ms, load, stock) {
                Ok(node) => nodes.push(node),
                Err(e) => {
                    tracing::warn!(location = %location.id, error = %e.message, "a stored location cannot be placed on the map: it is left out of routing")
                }
            }
        }
        let input = RoutingInput {
            currency: self.currency,
            nodes,
            destinations,
            lines,
            rules: self.rules.clone(),
            budget: SearchBudget::STANDARD,
        };
        match routing::route(&input) {
            Ok(decision) => {
                for p in decision.packages.iter().filter(|_| count) {
                    // Only a node with a daily capacity keeps a count (the last lock of a round);
                    // the others' load is counted from their allocations when read.
                    if !self
                        .nodes
                        .iter()
                        .any(|(l, _)| l.id == p.location_id && l.daily_capacity.is_some())
                    {
                        continue;
                    }
                    *self.loads.entry(p.location_id.clone()).or_default() += 1;
                    *self.added.entry(p.location_id.clone()).or_default() += 1;
                }
                Ok((decision, input))
            }
            Err(RoutingError::NoPlan(no))
                if !no.short_lines.is_empty()
                    && no.short_lines.iter().all(|l| {
                        // No eligible node has any, yet the network holds the units: a routing
                        // refusal (country, capabilities, rules, capacity), not a shortage.
                        let held: i64 = levels
                            .get(l.sku.as_str())
                            .map_or(0, |v| v.iter().map(|(_, q)| (*q).max(0)).sum());
                        l.available == 0 && held >= l.requested
                    }) =>
            {
                let mut codes: Vec<ReasonCode> = no
                    .candidates
                    .iter()
                    .flat_map(|c| c.reasons.iter().copied())
                    .filter(|r| *r != ReasonCode::InsufficientStock)
                    .collect();
                codes.sort();
                codes.dedup();
                Err(PlaceError::NoRoute(codes))
            }
            Err(RoutingError::NoPlan(no)) if !no.short_lines.is_empty() => {
                Err(PlaceError::Shortage(
                    no.short_lines
                        .iter()
                        .map(|s| Shortage {
                            sku: s.sku.clone(),
                            requested: s.requested,
                            available: s.available,
                            address_index: Some(s.address_index),
                        })
                        .collect(),
                ))
            }
            Err(RoutingError::NoPlan(no)) => Err(PlaceError::NoRoute(no.reason_codes)),
            Err(RoutingError::Invalid(errs)) => Err(PlaceError::Unroutable(errs)),
        }
    }

    /// Adds the round's packages to each node's count of its local day, in location order (the
    /// last lock a placement takes). Fails with `CapacityRaced` when another process's round
    /// took a node past its daily capacity first: the round is then placed again.
    pub(crate) async fn write_loads<S: Sql>(
        &self,
        tx: &mut S,
        tenant: &str,
    ) -> Result<(), StoreError> {
        if self.added.is_empty() {
            return Ok(());
        }
        let mut args: Vec<Val> = vec![tenant.into()];
        let mut values = Vec::with_capacity(self.added.len());
        for (loc, n) in &self.added {
            let day = self
                .nodes
                .iter()
                .find(|(l, _)| l.id == *loc)
                .map(|(_, c)| c.day.clone())
                .ok_or_else(|| corrupt("a package from an unknown node"))?;
            values.push(format!(
                "($1, ${}, ${}, ${})",
                args.len() + 1,
                args.len() + 2,
                args.len() + 3
            ));
            args.extend([Val::from(loc.as_str()), Val::S(day), Val::I(*n)]);
        }
        let sql = format!(
            "INSERT INTO location_load (tenant_id, location_id, day, packages) VALUES {} \
             ON CONFLICT (tenant_id, location_id, day) DO UPDATE SET packages = location_load.packages + excluded.packages \
             RETURNING location_id, packages",
            values.join(", ")
        );
        for r in tx.rows(&sql, args).await? {
            let (loc, packages) = (r[0].text()?, r[1].int()?);
            let cap = self
                .nodes
                .iter()
                .find(|(l, _)| l.id.as_str() == loc)
                .and_then(|(l, _)| l.daily_capacity);
            if cap.is_some_and(|c| packages > i64::from(c)) {
                return Err(StoreError::CapacityRaced);
            }
        }
        Ok(())
    }
}

/// A stored routing decision's row values: (id, body).
pub(crate) fn record(
    order_id: &str,
    now_ms: i64,
    decision: Decision,
    input: RoutingInput,
) -> Result<(String, String), StoreError> {
    let decision_id = format!("rtd_{}", uuid::Uuid::now_v7().simple());
    let record = DecisionRecord::new(
        decision_id.clone(),
        order_id.to_string(),
        now_ms,
        decision,
        input,
    );
    Ok((
        decision_id,
        serde_json::to_string(&record).map_err(corrupt)?,
    ))
}

impl crate::Store {
    /// Packages routed to each location per local day, for days from `since_day` (`YYYY-MM-DD`)
    /// on: `(location id, day) → packages`.
    pub async fn location_loads(
        &self,
        tenant: &str,
        since_day: &str,
    ) -> Result<HashMap<(String, String), i64>, StoreError> {
        let rows = self
            .read_rows(tenant, "SELECT location_id, day, packages FROM location_load WHERE tenant_id = $1 AND day >= $2", vec![tenant.into(), since_day.into()])
            .await?;
        rows.iter()
            .map(|r| Ok(((r[0].text()?, r[1].text()?), r[2].int()?)))
            .collect()
    }

    /// Packages routed to each location by orders placed at or after `since_ms`, counted from
    /// the orders' allocations (one package per order and location): the load of a node without
    /// a daily capacity, which keeps no count.
    pub async fn packages_since(
        &self,
        tenant: &str,
        since_ms: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT a.location_id, CAST(COUNT(DISTINCT a.order_id) AS BIGINT) FROM order_allocations a \
                 JOIN orders o ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
                 WHERE a.tenant_id = $1 AND o.created_at_ms >= $2 GROUP BY a.location_id",
                vec![tenant.into(), since_ms.into()],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r[0].text()?, r[1].int()?)))
            .collect()
    }

    /// The routing decision an order was placed with (`None`: no such order, or placed before
    /// routing was recorded).
    pub async fn routing_decision(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        let rows = self
            .read_rows(
                tenant,
                // The placement's decision: the first (a short pick's re-route adds later ones).
                "SELECT body FROM routing_decisions WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq LIMIT 1",
                vec![tenant.into(), order_id.into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                serde_json::from_str(&r[0].text()?)
                    .map_err(|e| corrupt(format!("routing decision: {e}")))
            })
            .transpose()
    }

    /// Routing decisions, newest first: at most `limit` of those older than `before` (a `seq`
    /// this returned), each with its `seq`.
    pub async fn routing_decisions(
        &self,
        tenant: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, DecisionRecord)>, StoreError> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT seq, body FROM routing_decisions WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                vec![tenant.into(), before.unwrap_or(i64::MAX).into(), limit.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r[0].int()?,
                    serde_json::from_str(&r[1].text()?)
                        .map_err(|e| corrupt(format!("routing decision: {e}")))?,
                ))
            })
            .collect()
    }
}
