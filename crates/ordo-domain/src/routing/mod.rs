//! Order routing: which fulfilment node(s) ship which units to which address, chosen as the
//! cheapest plan under hard rules, and returned as a `Decision` a person can read. Pure and
//! deterministic: no clock, no randomness, no I/O; the same input always gives the same output.
//!
//! # Cost model
//! A *package* is one (node, address) pair the plan uses; all lines one node ships to one
//! address travel together. Everything is integer minor units of the input's one currency:
//!
//! ```text
//! package cost = handling_cost
//!              + round_half_up(cost_per_100km × distance_m / 100 000)
//!              + cutoff_penalty            (only when the node's cut-off has passed today)
//! plan cost    = Σ package costs
//! ```
//!
//! `distance_m` is the great-circle (haversine) distance in whole metres between the node and
//! the address (`GeoPoint::distance_m`); the decision shows it as `distance_km` to 0.1 km. Every
//! package's cost is rounded on its own, so the plan total is exactly the sum of the packages.
//! Ties on cost go to the plan with fewer packages, then the shorter total distance; what is left
//! (nodes at one spot with equal prices) goes to the search order, which sorts nodes by id, so
//! the answer never depends on the order nodes are given in.
//!
//! # Hard rules (before any scoring)
//! A node may carry a line to an address only if it is active, below its daily capacity, ships to
//! the address's country (`ships_to` empty = everywhere), has `hazmat` / `cold_chain` /
//! `oversize` when the product needs it, and the tenant's rules admit it for that country. A node
//! with `r` packages of capacity left may ship at most `r` packages in the plan. Lines may be
//! split by quantity across nodes; stock of one SKU at one node is shared by every line and
//! address that needs it.
//!
//! # Exactness
//! The search (`solver`) is an exact branch and bound over the set of open packages. Whether a
//! set can carry the order is a max-flow question, separate per SKU (its lines → the stock of
//! that SKU at the nodes whose packages are open). When a SKU falls short, the residual graph's
//! minimum cut names every package that could raise its flow: a package not crossing the cut
//! leaves the cut's capacity, hence the flow, unchanged. So every feasible superset contains one
//! of them, and branching on "which of them is added next" — cheapest first, each branch
//! forbidding the ones tried before it — visits every feasible plan in exactly one branch. (Of
//! the short SKUs, the one with the fewest affordable candidates is branched on.) A branch is
//! cut when its cost plus a lower bound reaches the best plan found. The bound: each address
//! needs a new package for each of its unmet SKUs, so at least the dearest of the cheapest such
//! packages; packages to different addresses are different, so these add up over addresses; and
//! any unmet SKU needs at least its cheapest candidate. Forbidden packages and nodes without
//! capacity left are never candidates. Every bound is valid, so a search that finishes has found
//! the cheapest plan; a property test compares its cost with brute-force enumeration of every
//! package set on random networks (≤ 8 nodes, ≤ 6 lines, 1–2 addresses, random stock, rules,
//! capabilities, capacities and cut-offs).
//!
//! # Budget and fallback
//! The problem is NP-hard in general (fixed-charge covering), so the search is bounded by
//! `SearchBudget::max_expansions` — a count, not a clock, so the result stays deterministic. It
//! starts from the better of two heuristic plans (the cheapest single node per address; a greedy
//! plan that adds the package with the least cost per share of unmet demand, then drops the
//! packages it does not need), so when the budget runs out it returns the best plan found so
//! far, marked `optimal: false` with the reason code `search_budget_exhausted` instead of
//! `lowest_cost`. With `SearchBudget::STANDARD` every order of the benchmark's retail network
//! finishes in a few dozen expansions; in its sparse-stock network (stores holding 10 % of the
//! catalog) 13 % of 20-line orders fall back. If the budget runs out before any plan was found,
//! the answer is `NoPlan` with `search_budget_exhausted`.

mod geo;
mod order;
mod shipping;
mod solver;
#[cfg(test)]
mod tests;

pub use geo::{COUNTRY_CENTROIDS, Cutoff, Destination, GeoPoint, PointSource, us_zip_centroid};
pub use order::{DecisionRecord, LocalClock, local_clock, order_demand};
pub use shipping::{ShippingOption, ShippingRates, ShippingSpeed, shipping_options};

use crate::contact::CountryCode;
use crate::error::{FieldError, FieldErrors};
use crate::ids::{LocationId, Sku};
use crate::money::{Currency, Money};
use crate::product::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Changes whenever the cost model, the rules or the tie-breaks change; stored with decisions.
pub const ENGINE_VERSION: &str = "routing-1";

/// The largest amount a cost field may hold (the same bound as `Money::parse_non_negative`).
const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// What a node can handle, or what a product needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capabilities {
    #[serde(default)]
    pub hazmat: bool,
    #[serde(default)]
    pub cold_chain: bool,
    #[serde(default)]
    pub oversize: bool,
}

/// A fulfilment location as routing sees it at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Node {
    #[schema(value_type = String)]
    pub id: LocationId,
    pub point: GeoPoint,
    /// Where the node is, when known (shown in decisions; `ships_to` decides where it ships).
    #[schema(value_type = Option<String>, example = "US")]
    pub country: Option<CountryCode>,
    /// Countries this node ships to; empty means everywhere.
    #[schema(value_type = Vec<String>)]
    pub ships_to: Vec<CountryCode>,
    pub capabilities: Capabilities,
    /// Packages per day; `None` means unlimited.
    pub daily_capacity: Option<u32>,
    /// Packages already routed here today.
    pub load_today: u32,
    /// Whether today's cut-off has passed (`Cutoff::has_passed`): packages then pay the tenant's
    /// `cutoff_penalty`, because they leave tomorrow.
    pub cutoff_passed: bool,
    pub handling_cost: Money,
    pub cost_per_100km: Money,
    pub active: bool,
    /// Units available for online sale per SKU (on hand − reserved − held back). Missing = 0.
    /// Only the order's SKUs matter: pass just those (a map of the whole catalog works, slower).
    #[schema(value_type = BTreeMap<String, i64>)]
    pub stock: BTreeMap<Sku, i64>,
}

impl Node {
    /// Packages this node may still ship today (`u32::MAX` when unlimited).
    pub fn remaining_capacity(&self) -> u32 {
        match self.daily_capacity {
            Some(cap) => cap.saturating_sub(self.load_today),
            None => u32::MAX,
        }
    }
    fn stock_of(&self, sku: &Sku) -> i64 {
        self.stock.get(sku).copied().unwrap_or(0).max(0)
    }
}

/// One order line to route: what, how many, to which address (an index into `destinations`),
/// and what the product needs of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineDemand {
    #[schema(value_type = String)]
    pub sku: Sku,
    #[schema(value_type = i64)]
    pub quantity: Quantity,
    pub address_index: usize,
    pub needs: Capabilities,
}

/// One tenant rule; every rule applies on top of the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TenantRule {
    /// Addresses in `country` are served only from `nodes`.
    CountryOnlyFrom {
        #[schema(value_type = String)]
        country: CountryCode,
        #[schema(value_type = Vec<String>)]
        nodes: Vec<LocationId>,
    },
    /// Addresses in `country` are never served from `nodes`.
    CountryNeverFrom {
        #[schema(value_type = String)]
        country: CountryCode,
        #[schema(value_type = Vec<String>)]
        nodes: Vec<LocationId>,
    },
}

impl TenantRule {
    fn forbids(&self, country: &CountryCode, node: &LocationId) -> bool {
        match self {
            TenantRule::CountryOnlyFrom { country: c, nodes } => {
                c == country && !nodes.contains(node)
            }
            TenantRule::CountryNeverFrom { country: c, nodes } => {
                c == country && nodes.contains(node)
            }
        }
    }
}

/// A tenant's routing rules, versioned: decisions record the version they were made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantRules {
    pub version: u32,
    /// Added to a package whose node's cut-off has passed (it ships a day later).
    pub cutoff_penalty: Money,
    pub rules: Vec<TenantRule>,
}

impl TenantRules {
    /// Checks the rules against the tenant's nodes: a non-negative penalty and every node named
    /// exists. Errors carry paths such as `rules[1].nodes[0]`.
    pub fn validate(&self, known_nodes: &[LocationId]) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if let Err(e) = check_amount(&self.cutoff_penalty, None) {
            errs.push(FieldError {
                path: join("cutoff_penalty", &e.path),
                ..e
            });
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let (TenantRule::CountryOnlyFrom { nodes, .. }
            | TenantRule::CountryNeverFrom { nodes, .. }) = rule;
            if nodes.is_empty() {
                errs.add(
                    format!("rules[{i}].nodes"),
                    "required",
                    "a rule names at least one node",
                );
            }
            for (j, n) in nodes.iter().enumerate() {
                if !known_nodes.contains(n) {
                    errs.add(
                        format!("rules[{i}].nodes[{j}]"),
                        "unknown_location",
                        format!("no location '{n}'"),
                    );
                }
            }
        }
        errs.into_result()
    }
}

/// How much search the exact solver may do before it returns its best plan so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchBudget {
    /// Branch-and-bound nodes expanded at most.
    pub max_expansions: u32,
}

impl SearchBudget {
    /// About 3.5 ms of search at worst for 1,000 nodes × 20 lines on the benchmark machine
    /// (≈ 0.35 µs per expansion; more lines make each expansion dearer). Typical orders need a
    /// few dozen expansions; in the benchmark's sparse-stock network 87 % of orders finish within
    /// it, and the rest get the best plan found (`optimal: false`).
    pub const STANDARD: SearchBudget = SearchBudget {
        max_expansions: 10_000,
    };
}

/// Everything one routing decision needs, in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutingInput {
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
    pub nodes: Vec<Node>,
    pub destinations: Vec<Destination>,
    pub lines: Vec<LineDemand>,
    pub rules: TenantRules,
    pub budget: SearchBudget,
}

/// Why a node was or was not used, and why the plan looks as it does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The plan is the cheapest under the cost model (the search finished).
    LowestCost,
    /// Each address ships in one package from the nearest node that has all of its lines.
    NearestInStock,
    /// An address ships from several nodes because no single node can serve all of its lines.
    SplitNoSingleNode,
    /// An address ships from several nodes although one could serve it: the split costs less.
    SplitCheaper,
    /// The node's cut-off has passed: its packages pay the cut-off penalty.
    CutoffPassed,
    /// The node lacks (some of) the stock a line needs.
    InsufficientStock,
    RuleHazmat,
    RuleColdChain,
    RuleOversize,
    NotShippingToCountry,
    AtCapacity,
    Inactive,
    TenantRule,
    /// The node could serve, but every plan using it costs more.
    HigherCost,
    /// The search budget ran out: the plan is the best found, perhaps not the cheapest.
    SearchBudgetExhausted,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::LowestCost => "lowest_cost",
            ReasonCode::NearestInStock => "nearest_in_stock",
            ReasonCode::SplitNoSingleNode => "split_no_single_node",
            ReasonCode::SplitCheaper => "split_cheaper",
            ReasonCode::CutoffPassed => "cutoff_passed",
            ReasonCode::InsufficientStock => "insufficient_stock",
            ReasonCode::RuleHazmat => "rule_hazmat",
            ReasonCode::RuleColdChain => "rule_cold_chain",
            ReasonCode::RuleOversize => "rule_oversize",
            ReasonCode::NotShippingToCountry => "not_shipping_to_country",
            ReasonCode::AtCapacity => "at_capacity",
            ReasonCode::Inactive => "inactive",
            ReasonCode::TenantRule => "tenant_rule",
            ReasonCode::HigherCost => "higher_cost",
            ReasonCode::SearchBudgetExhausted => "search_budget_exhausted",
        }
    }
}

/// The three parts of a package's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostContributions {
    pub handling: Money,
    pub distance: Money,
    pub cutoff_penalty: Money,
}

/// Units of one order line in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageLine {
    /// Index into the input's `lines`.
    pub line_index: usize,
    #[schema(value_type = String)]
    pub sku: Sku,
    pub quantity: i64,
}

/// What one node ships to one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Package {
    #[schema(value_type = String)]
    pub location_id: LocationId,
    pub address_index: usize,
    pub lines: Vec<PackageLine>,
    pub cost: Money,
    pub contributions: CostContributions,
    pub distance_km: f64,
}

/// One node of the tenant and what the engine made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Candidate {
    #[schema(value_type = String)]
    pub location_id: LocationId,
    /// Could ship at least one line to at least one address (rules passed, some stock).
    pub eligible: bool,
    /// Ships at least one package in the plan.
    pub selected: bool,
    pub reasons: Vec<ReasonCode>,
    /// The address `distance_km`, `cost` and `contributions` refer to: the first the node is
    /// eligible for, else the first address.
    pub address_index: usize,
    pub distance_km: f64,
    /// What a package from this node to that address would cost; `None` when not eligible.
    pub cost: Option<Money>,
    pub contributions: CostContributions,
}

/// A routing decision: the plan, its cost, every node considered and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub engine_version: String,
    pub rules_version: u32,
    pub packages: Vec<Package>,
    pub total_cost: Money,
    pub total_distance_km: f64,
    /// `true` when the search proved the plan cheapest; `false` after the fallback.
    pub optimal: bool,
    pub candidates: Vec<Candidate>,
    pub reason_codes: Vec<ReasonCode>,
    /// Branch-and-bound nodes the search expanded (≤ the budget).
    pub expansions: u32,
}

/// A line no plan can fill, and how much of it the eligible nodes could ship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShortLine {
    pub line_index: usize,
    #[schema(value_type = String)]
    pub sku: Sku,
    pub address_index: usize,
    pub requested: i64,
    pub available: i64,
}

/// No plan fills the order. `short_lines` lists the lines stock cannot cover; it is empty when
/// the limit is capacity (`at_capacity`: too few packages left at the nodes that hold the stock)
/// or the search budget (`search_budget_exhausted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoPlan {
    pub engine_version: String,
    pub rules_version: u32,
    pub short_lines: Vec<ShortLine>,
    pub candidates: Vec<Candidate>,
    pub reason_codes: Vec<ReasonCode>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// The order cannot be routed (the API answers 409 with the short lines).
    #[error("no routing plan can fill the order")]
    NoPlan(NoPlan),
    /// The input breaks a precondition (the API answers 422 with these paths).
    #[error("invalid routing input")]
    Invalid(FieldErrors),
}

/// Routes one order. See the module documentation for the cost model and the guarantees.
pub fn route(input: &RoutingInput) -> Result<Decision, RoutingError> {
    validate(input).map_err(RoutingError::Invalid)?;
    let net = Network::build(input);
    let outcome = solver::solve(&net.problem, input.budget);
    match outcome.plan {
        Some(plan) => Ok(net.decision(input, &plan, outcome.optimal, outcome.expansions)),
        None => {
            let mut reason_codes = Vec::new();
            let short_lines = net.short_lines(input);
            if !short_lines.is_empty() {
                reason_codes.push(ReasonCode::InsufficientStock);
            } else if outcome.optimal {
                reason_codes.push(ReasonCode::AtCapacity);
            } else {
                reason_codes.push(ReasonCode::SearchBudgetExhausted);
            }
            Err(RoutingError::NoPlan(NoPlan {
                engine_version: ENGINE_VERSION.to_string(),
                rules_version: input.rules.version,
                short_lines,
                candidates: net.candidates(input, &vec![false; input.nodes.len()], false),
                reason_codes,
            }))
        }
    }
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}

/// A non-negative amount within bounds, in `currency` when given. The error's path is relative
/// (`amount` or `currency`).
fn check_amount(m: &Money, currency: Option<Currency>) -> Result<(), FieldError> {
    if let Some(c) = currency
        && m.currency != c
    {
        return Err(FieldError::new(
            "currency",
            "currency_mismatch",
            format!("expected {c}, got {}", m.currency),
        ));
    }
    if m.amount < 0 {
        return Err(FieldError::new(
            "amount",
            "negative",
            "an amount must not be negative",
        ));
    }
    if m.amount > MAX_AMOUNT {
        return Err(FieldError::new(
            "amount",
            "too_large",
            "an amount must be at most 10^12 minor units",
        ));
    }
    Ok(())
}

fn validate(input: &RoutingInput) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::default();
    let cur = Some(input.currency);
    let mut seen: HashMap<&LocationId, usize> = HashMap::new();
    for (i, n) in input.nodes.iter().enumerate() {
        if let Some(first) = seen.insert(&n.id, i) {
            errs.add(
                format!("nodes[{i}].id"),
                "duplicate",
                format!("location '{}' is also nodes[{first}]", n.id),
            );
        }
        for (field, m) in [
            ("handling_cost", &n.handling_cost),
            ("cost_per_100km", &n.cost_per_100km),
        ] {
            if let Err(e) = check_amount(m, cur) {
                errs.push(FieldError {
                    path: join(&format!("nodes[{i}].{field}"), &e.path),
                    ..e
                });
            }
        }
    }
    if let Err(e) = check_amount(&input.rules.cutoff_penalty, cur) {
        errs.push(FieldError {
            path: join("rules.cutoff_penalty", &e.path),
            ..e
        });
    }
    let ids: Vec<LocationId> = input.nodes.iter().map(|n| n.id.clone()).collect();
    if let Err(rule_errs) = input.rules.validate(&ids) {
        for e in rule_errs.0 {
            if e.path.starts_with("cutoff_penalty") {
                continue; // reported above, with the currency check
            }
            errs.push(FieldError {
                path: join("rules", &e.path),
                ..e
            });
        }
    }
    if input.lines.is_empty() {
        errs.add(
            "lines",
            "required",
            "an order to route has at least one line",
        );
    }
    for (i, l) in input.lines.iter().enumerate() {
        if l.address_index >= input.destinations.len() {
            errs.add(
                format!("lines[{i}].address_index"),
                "out_of_range",
                "no such address",
            );
        }
    }
    errs.into_result()
}

/// Reasons a node may not carry a line to an address, as a bit set over `ReasonCode`s (0: it may).
type Failures = u32;

fn bit(code: ReasonCode) -> Failures {
    1 << code as u32
}

fn codes(f: Failures) -> impl Iterator<Item = ReasonCode> {
    RULE_CODES.into_iter().filter(move |c| f & bit(*c) != 0)
}

const RULE_CODES: [ReasonCode; 7] = [
    ReasonCode::RuleHazmat,
    ReasonCode::RuleColdChain,
    ReasonCode::RuleOversize,
    ReasonCode::NotShippingToCountry,
    ReasonCode::AtCapacity,
    ReasonCode::Inactive,
    ReasonCode::TenantRule,
];

/// The hard rules that depend on the node alone.
fn node_failures(node: &Node) -> Failures {
    let mut f = 0;
    if !node.active {
        f |= bit(ReasonCode::Inactive);
    }
    if node.remaining_capacity() == 0 {
        f |= bit(ReasonCode::AtCapacity);
    }
    f
}

/// The hard rules that depend on the node and the address.
fn address_failures(node: &Node, dest: &Destination, rules: &TenantRules) -> Failures {
    let mut f = 0;
    if !node.ships_to.is_empty() && !node.ships_to.contains(&dest.country) {
        f |= bit(ReasonCode::NotShippingToCountry);
    }
    if rules
        .rules
        .iter()
        .any(|r| r.forbids(&dest.country, &node.id))
    {
        f |= bit(ReasonCode::TenantRule);
    }
    f
}

/// The hard rules that depend on the node and the product.
fn product_failures(node: &Node, needs: &Capabilities) -> Failures {
    let mut f = 0;
    if needs.hazmat && !node.capabilities.hazmat {
        f |= bit(ReasonCode::RuleHazmat);
    }
    if needs.cold_chain && !node.capabilities.cold_chain {
        f |= bit(ReasonCode::RuleColdChain);
    }
    if needs.oversize && !node.capabilities.oversize {
        f |= bit(ReasonCode::RuleOversize);
    }
    f
}

/// The node's stock of each SKU group. Both the stock map and `sorted` (group numbers in SKU
/// order) are sorted, so one merge walk replaces a map search per group.
fn stock_by_group(node: &Node, groups: &[Sku], sorted: &[usize]) -> Vec<i64> {
    let mut out = vec![0; groups.len()];
    if node.stock.len() > 8 * groups.len() {
        for (g, sku) in groups.iter().enumerate() {
            out[g] = node.stock_of(sku);
        }
        return out;
    }
    let mut want = sorted.iter().peekable();
    for (sku, units) in &node.stock {
        while want.next_if(|g| groups[**g] < *sku).is_some() {}
        match want.peek() {
            Some(g) if groups[**g] == *sku => out[**g] = (*units).max(0),
            Some(_) => {}
            None => break,
        }
    }
    out
}

/// A package's cost parts (see the module docs for the rounding).
fn package_cost(node: &Node, dest: &Destination, penalty: Money) -> (CostContributions, i64) {
    let distance_m = node.point.distance_m(&dest.point);
    let per_100 = node.cost_per_100km.amount as i128;
    let distance_cost = ((per_100 * distance_m as i128 + 50_000) / 100_000) as i64;
    let cur = node.handling_cost.currency;
    let contributions = CostContributions {
        handling: node.handling_cost,
        distance: Money::new(distance_cost, cur),
        cutoff_penalty: Money::new(
            if node.cutoff_passed {
                penalty.amount
            } else {
                0
            },
            cur,
        ),
    };
    (contributions, distance_m)
}

fn total(c: &CostContributions) -> i64 {
    c.handling.amount + c.distance.amount + c.cutoff_penalty.amount
}

fn km(distance_m: i64) -> f64 {
    ((distance_m + 50) / 100) as f64 / 10.0
}

/// The input turned into the solver's index form, plus what the explanation needs.
/// Nodes are indexed in id order (`order[k]` is the input index of solver node `k`).
struct Network {
    problem: solver::Problem,
    order: Vec<usize>,
    /// Per solver package (node k × address d): cost parts and metres.
    costs: Vec<(CostContributions, i64)>,
    /// Per (solver node, line): the hard rules that exclude the node for the line.
    failures: Vec<Failures>,
    /// Per line: its SKU group in `problem`.
    group_of: Vec<usize>,
}

impl Network {
    fn build(input: &RoutingInput) -> Self {
        let mut order: Vec<usize> = (0..input.nodes.len()).collect();
        order.sort_by(|a, b| input.nodes[*a].id.cmp(&input.nodes[*b].id));
        let d_count = input.destinations.len();
        let mut groups: Vec<Sku> = Vec::new();
        let group_of: Vec<usize> = input
            .lines
            .iter()
            .map(|l| match groups.iter().position(|s| *s == l.sku) {
                Some(g) => g,
                None => {
                    groups.push(l.sku.clone());
                    groups.len() - 1
                }
            })
            .collect();
        let mut groups_sorted: Vec<usize> = (0..groups.len()).collect();
        groups_sorted.sort_by(|a, b| groups[*a].cmp(&groups[*b]));
        let mut costs = Vec::with_capacity(order.len() * d_count);
        let mut weights = Vec::with_capacity(order.len() * d_count);
        let mut failures = Vec::with_capacity(order.len() * input.lines.len());
        let mut stock = Vec::with_capacity(order.len() * groups.len());
        let mut capacity = Vec::with_capacity(order.len());
        let mut allowed = Vec::with_capacity(order.len() * input.lines.len());
        for &i in &order {
            let node = &input.nodes[i];
            for dest in &input.destinations {
                let (c, m) = package_cost(node, dest, input.rules.cutoff_penalty);
                weights.push(solver::weight(total(&c), m));
                costs.push((c, m));
            }
            stock.extend(stock_by_group(node, &groups, &groups_sorted));
            capacity.push(node.remaining_capacity());
            let own = node_failures(node);
            let by_dest: Vec<Failures> = input
                .destinations
                .iter()
                .map(|d| own | address_failures(node, d, &input.rules))
                .collect();
            for line in &input.lines {
                let f = by_dest[line.address_index] | product_failures(node, &line.needs);
                allowed.push(f == 0);
                failures.push(f);
            }
        }
        let lines = input
            .lines
            .iter()
            .zip(&group_of)
            .map(|(l, g)| solver::Line {
                group: *g,
                dest: l.address_index,
                qty: l.quantity.get(),
            })
            .collect();
        let problem = solver::Problem::new(
            order.len(),
            d_count,
            groups.len(),
            lines,
            weights,
            stock,
            capacity,
            allowed,
        );
        Network {
            problem,
            order,
            costs,
            failures,
            group_of,
        }
    }

    fn decision(
        &self,
        input: &RoutingInput,
        plan: &solver::Plan,
        optimal: bool,
        expansions: u32,
    ) -> Decision {
        let d_count = input.destinations.len();
        let cur = input.currency;
        let mut packages = Vec::new();
        let mut selected = vec![false; input.nodes.len()];
        let mut total_cost = 0i64;
        let mut total_m = 0i64;
        for shipment in &plan.packages {
            let (k, d) = (shipment.pkg / d_count, shipment.pkg % d_count);
            let i = self.order[k];
            selected[i] = true;
            let (c, m) = self.costs[shipment.pkg];
            total_cost += total(&c);
            total_m += m;
            let lines = shipment
                .lines
                .iter()
                .map(|(l, q)| PackageLine {
                    line_index: *l,
                    sku: input.lines[*l].sku.clone(),
                    quantity: *q,
                })
                .collect();
            packages.push(Package {
                location_id: input.nodes[i].id.clone(),
                address_index: d,
                lines,
                cost: Money::new(total(&c), cur),
                contributions: c,
                distance_km: km(m),
            });
        }
        packages.sort_by(|a, b| {
            a.address_index
                .cmp(&b.address_index)
                .then(a.location_id.cmp(&b.location_id))
        });

        let mut reason_codes = vec![if optimal {
            ReasonCode::LowestCost
        } else {
            ReasonCode::SearchBudgetExhausted
        }];
        let nearest = self.nearest_in_stock(input);
        let mut all_nearest = true;
        for (d, nearest_here) in nearest.iter().enumerate() {
            let here: Vec<&Package> = packages.iter().filter(|p| p.address_index == d).collect();
            if here.len() >= 2 {
                all_nearest = false;
                reason_codes.push(if nearest_here.is_some() {
                    ReasonCode::SplitCheaper
                } else {
                    ReasonCode::SplitNoSingleNode
                });
            } else if let Some(p) = here.first()
                && nearest_here.map(|i| &input.nodes[i].id) != Some(&p.location_id)
            {
                all_nearest = false;
            }
        }
        if all_nearest {
            reason_codes.push(ReasonCode::NearestInStock);
        }
        if packages
            .iter()
            .any(|p| p.contributions.cutoff_penalty.amount > 0)
        {
            reason_codes.push(ReasonCode::CutoffPassed);
        }
        reason_codes.sort();
        reason_codes.dedup();

        let mut candidates = self.candidates(input, &selected, optimal);
        for c in candidates.iter_mut().filter(|c| c.selected) {
            let ships_whole: Vec<usize> = (0..d_count)
                .filter(|d| {
                    let here: Vec<&Package> =
                        packages.iter().filter(|p| p.address_index == *d).collect();
                    here.len() == 1 && here[0].location_id == c.location_id
                })
                .collect();
            if ships_whole
                .iter()
                .any(|d| nearest[*d].map(|i| &input.nodes[i].id) == Some(&c.location_id))
            {
                c.reasons.push(ReasonCode::NearestInStock);
                c.reasons.sort();
            }
        }
        Decision {
            engine_version: ENGINE_VERSION.to_string(),
            rules_version: input.rules.version,
            packages,
            total_cost: Money::new(total_cost, cur),
            total_distance_km: km(total_m),
            optimal,
            candidates,
            reason_codes,
            expansions,
        }
    }

    /// Per address: the nearest node (input index) that alone could ship all its lines, if any.
    fn nearest_in_stock(&self, input: &RoutingInput) -> Vec<Option<usize>> {
        let d_count = input.destinations.len();
        (0..d_count)
            .map(|d| {
                let mut best: Option<(i64, usize)> = None;
                for k in 0..self.order.len() {
                    if self.problem.serves_whole_address(k, d) {
                        let m = self.costs[k * d_count + d].1;
                        if best.is_none_or(|(bm, _)| m < bm) {
                            best = Some((m, k));
                        }
                    }
                }
                best.map(|(_, k)| self.order[k])
            })
            .collect()
    }

    /// Every node, with its verdict: eligible ones by cost, then the others by id.
    fn candidates(&self, input: &RoutingInput, selected: &[bool], optimal: bool) -> Vec<Candidate> {
        let d_count = input.destinations.len();
        let l_count = input.lines.len();
        let mut out: Vec<Candidate> = Vec::with_capacity(self.order.len());
        for (k, &i) in self.order.iter().enumerate() {
            let node = &input.nodes[i];
            let mut reasons: Vec<ReasonCode> = Vec::new();
            let mut eligible_dest: Option<usize> = None;
            for (l, line) in input.lines.iter().enumerate() {
                let f = self.failures[k * l_count + l];
                reasons.extend(codes(f));
                if f == 0 {
                    let have = self.problem.stock_at(k, self.group_of[l]);
                    if have < line.quantity.get() {
                        reasons.push(ReasonCode::InsufficientStock);
                    }
                    if have > 0 {
                        eligible_dest = Some(
                            eligible_dest.map_or(line.address_index, |d| d.min(line.address_index)),
                        );
                    }
                }
            }
            if node.cutoff_passed {
                reasons.push(ReasonCode::CutoffPassed);
            }
            let eligible = eligible_dest.is_some();
            if selected[i] {
                reasons.push(if optimal {
                    ReasonCode::LowestCost
                } else {
                    ReasonCode::SearchBudgetExhausted
                });
            } else if eligible {
                reasons.push(ReasonCode::HigherCost);
            }
            reasons.sort();
            reasons.dedup();
            let d = eligible_dest.unwrap_or(0).min(d_count.saturating_sub(1));
            let (contributions, m) = if d_count > 0 {
                self.costs[k * d_count + d]
            } else {
                let zero = Money::zero(input.currency);
                (
                    CostContributions {
                        handling: zero,
                        distance: zero,
                        cutoff_penalty: zero,
                    },
                    0,
                )
            };
            out.push(Candidate {
                location_id: node.id.clone(),
                eligible,
                selected: selected[i],
                reasons,
                address_index: d,
                distance_km: km(m),
                cost: eligible.then(|| Money::new(total(&contributions), input.currency)),
                contributions,
            });
        }
        // Stable sort: eligible first by cost then distance; the rest stay in id order.
        out.sort_by(|a, b| {
            b.eligible
                .cmp(&a.eligible)
                .then_with(|| match (a.cost, b.cost) {
                    (Some(x), Some(y)) => x
                        .amount
                        .cmp(&y.amount)
                        .then(a.distance_km.total_cmp(&b.distance_km)),
                    _ => std::cmp::Ordering::Equal,
                })
        });
        out
    }

    /// The lines eligible nodes cannot cover even with every allowed package open.
    fn short_lines(&self, input: &RoutingInput) -> Vec<ShortLine> {
        let shipped = self.problem.max_shippable();
        input
            .lines
            .iter()
            .enumerate()
            .filter(|(l, line)| shipped[*l] < line.quantity.get())
            .map(|(l, line)| ShortLine {
                line_index: l,
                sku: line.sku.clone(),
                address_index: line.address_index,
                requested: line.quantity.get(),
                available: shipped[l],
            })
            .collect()
    }
}
