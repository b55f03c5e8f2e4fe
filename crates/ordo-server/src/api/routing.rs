//! `/v1/routing/rules`: a tenant's routing rules, versioned (admins write, staff and admins read).
//! Every change is a new version; each names only locations that exist.

use super::inputs::MoneyInput;
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use crate::AppState;
use crate::auth::Caller;
use crate::services::{self, rfc3339};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use ordo_domain::routing::{Decision, DecisionRecord, RoutingInput, TenantRule, TenantRules};
use ordo_domain::{CountryCode, Currency, FieldErrors, LocationId, Money};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The most rules a tenant may have.
const MAX_RULES: usize = 200;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// `country_only_from` (addresses in `country` are served only from `nodes`) or
    /// `country_never_from` (never from `nodes`).
    #[schema(pattern = "^(country_only_from|country_never_from)$")]
    pub kind: String,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub country: String,
    /// Location ids.
    pub nodes: Vec<String>,
}

/// The whole rule set (PUT replaces it; the answer carries the new version).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRulesInput {
    /// Added to a package whose node's cut-off has passed (it ships a day later).
    pub cutoff_penalty: MoneyInput,
    #[serde(default)]
    pub rules: Vec<RuleInput>,
}

fn parse(input: &RoutingRulesInput) -> Result<TenantRules, ApiError> {
    let mut errs = FieldErrors::default();
    let penalty = errs.take(
        "cutoff_penalty",
        Money::parse_non_negative(input.cutoff_penalty.amount, &input.cutoff_penalty.currency),
    );
    if input.rules.len() > MAX_RULES {
        errs.add("rules", "too_many", format!("at most {MAX_RULES} rules"));
    }
    let mut rules = Vec::with_capacity(input.rules.len());
    for (i, r) in input.rules.iter().enumerate() {
        let country = errs.take(
            &format!("rules[{i}].country"),
            CountryCode::parse(&r.country),
        );
        let mut nodes = Vec::with_capacity(r.nodes.len());
        for (j, n) in r.nodes.iter().enumerate() {
            if let Some(id) = errs.take(&format!("rules[{i}].nodes[{j}]"), LocationId::parse(n)) {
                nodes.push(id);
            }
        }
        let Some(country) = country else { continue };
        match r.kind.as_str() {
            "country_only_from" => rules.push(TenantRule::CountryOnlyFrom { country, nodes }),
            "country_never_from" => rules.push(TenantRule::CountryNeverFrom { country, nodes }),
            _ => errs.add(
                format!("rules[{i}].kind"),
                "unknown_kind",
                "a rule is country_only_from or country_never_from",
            ),
        }
    }
    errs.into_result()?;
    let cutoff_penalty =
        penalty.unwrap_or_else(|| Money::new(0, Currency::parse("USD").expect("USD")));
    Ok(TenantRules {
        version: 0,
        cutoff_penalty,
        rules,
    })
}

async fn current(state: &AppState, caller: &Caller) -> Result<TenantRules, ApiError> {
    match state.store.routing_rules(caller.tenant()).await? {
        Some(rules) => Ok(rules),
        None => Ok(TenantRules {
            version: 0,
            cutoff_penalty: Money::new(0, Currency::parse("USD").expect("USD")),
            rules: vec![],
        }),
    }
}

/// The tenant's current routing rules (version 0 and no rules until an admin sets them).
#[utoipa::path(get, path = "/v1/routing/rules", tag = "routing", responses((status = 200, body = TenantRules)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<TenantRules>, ApiError> {
    Ok(Json(current(&state, &caller).await?))
}

/// Replace the tenant's routing rules: a new version, audited. Every node named must exist.
#[utoipa::path(put, path = "/v1/routing/rules", tag = "routing",
    request_body(content = RoutingRulesInput, example = json!({"cutoff_penalty": {"amount": 500, "currency": "USD"},
        "rules": [{"kind": "country_only_from", "country": "CA", "nodes": ["wh-east"]}, {"kind": "country_never_from", "country": "US", "nodes": ["store-chicago"]}]})),
    responses((status = 200, body = TenantRules, description = "the new version"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "another change took this version first; read and retry"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields or unknown locations; see errors")))]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(input): ApiJson<RoutingRulesInput>,
) -> Result<Json<TenantRules>, ApiError> {
    let mut rules = parse(&input)?;
    let locations = state.store.locations(caller.tenant()).await?;
    // One currency for the whole network: routing adds the penalty to the nodes' costs.
    if let Some(other) = locations
        .iter()
        .find(|l| l.handling_cost.currency != rules.cutoff_penalty.currency)
    {
        let mut errs = FieldErrors::default();
        errs.add(
            "cutoff_penalty.currency",
            "currency_mismatch",
            format!(
                "the network's costs are in {} (location {}): the penalty must be too",
                other.handling_cost.currency, other.id
            ),
        );
        return Err(ApiError::Validation(errs.0));
    }
    let known: Vec<LocationId> = locations.into_iter().map(|l| l.id).collect();
    rules
        .validate(&known)
        .map_err(|e| ApiError::Validation(e.0))?;
    let body = serde_json::to_string(&rules)
        .map_err(|e| ApiError::Internal(format!("routing rules: {e}")))?;
    match state
        .store
        .put_routing_rules_audited(caller.tenant(), &body, caller.audit_entry())
        .await?
    {
        Some(version) => {
            rules.version = version as u32;
            Ok(Json(rules))
        }
        None => Err(ApiError::Conflict {
            kind: "rules-changed",
            title: "The routing rules changed meanwhile",
            detail:
                "another change to the routing rules took this version first: read them and retry"
                    .into(),
            differences: vec![],
        }),
    }
}

/// A routing decision as the API shows it: the plan, every node considered and why, the same in
/// plain sentences, and the input it was made from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionBody {
    pub decision_id: String,
    pub order_id: String,
    /// RFC 3339, UTC.
    pub decided_at: String,
    #[serde(flatten)]
    pub decision: Decision,
    /// The decision in sentences: the packages and their costs, why the plan looks as it does,
    /// and why every other node was not used.
    pub explanation: Vec<String>,
    /// What the engine was given: the nodes (with the stock of the order's SKUs, their load and
    /// whether their cut-off had passed), the addresses, the lines and the rules.
    pub input: RoutingInput,
}

impl From<DecisionRecord> for DecisionBody {
    fn from(r: DecisionRecord) -> Self {
        let (decision, _) = r.decision();
        DecisionBody {
            explanation: decision.explain(),
            decision_id: r.decision_id,
            order_id: r.order_id,
            decided_at: rfc3339(r.decided_at_ms),
            decision,
            input: r.input,
        }
    }
}

/// How an order was routed: which nodes ship what, at what cost, and why every node of the
/// network was or was not used.
#[utoipa::path(get, path = "/v1/orders/{id}/routing", tag = "routing",
    params(("id" = String, Path, description = "internal id (ord_…) or order number (ORD-XXXX-XXXX)")),
    responses((status = 200, body = DecisionBody), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn for_order(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<DecisionBody>, ApiError> {
    Ok(Json(
        services::routing::for_order(&state, &caller, &id)
            .await?
            .into(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    pub items: Vec<DecisionBody>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The tenant's routing decisions, newest first.
#[utoipa::path(get, path = "/v1/routing/decisions", tag = "routing",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, pattern = "^[0-9]{0,18}$", description = "next_cursor of the previous page")),
    responses((status = 200, body = DecisionPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn decisions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DecisionPage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit").map(|l| l.parse::<i64>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errs.add("limit", "out_of_range", "limit is an integer from 1 to 100");
            20
        }
    };
    let before = match params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<i64>())
    {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => {
            errs.add(
                "cursor",
                "invalid_cursor",
                "pass a next_cursor value returned by this endpoint",
            );
            None
        }
    };
    errs.into_result()?;
    let (items, next) = services::routing::list(&state, &caller, before, limit).await?;
    Ok(Json(DecisionPage {
        items: items.into_iter().map(DecisionBody::from).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}
