//! Routing tests: one per hard rule and reason code, the geography helpers, and a property test
//! that compares the engine's cost with brute-force enumeration on random small networks.

use super::*;
use proptest::prelude::*;

const SF: (f64, f64) = (37.77, -122.42);
const OAKLAND: (f64, f64) = (37.80, -122.27);
const LA: (f64, f64) = (34.05, -118.24);
const RENO: (f64, f64) = (39.53, -119.81);
const DALLAS: (f64, f64) = (32.78, -96.80);
const NEWARK: (f64, f64) = (40.73, -74.17);

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::parse("USD").unwrap())
}
fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}
fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

/// An active US node with no stock, $3.00 handling and $1.00 per 100 km.
fn node(id: &str, at: (f64, f64), stock: &[(&str, i64)]) -> Node {
    Node {
        id: loc(id),
        point: GeoPoint::parse(at.0, at.1).unwrap(),
        country: Some(cc("US")),
        ships_to: vec![],
        capabilities: Capabilities::default(),
        daily_capacity: None,
        load_today: 0,
        cutoff_passed: false,
        handling_cost: usd(300),
        cost_per_100km: usd(100),
        active: true,
        stock: stock.iter().map(|(s, q)| (sku(s), *q)).collect(),
    }
}

fn to(at: (f64, f64)) -> Destination {
    Destination::resolve(&cc("US"), None, Some(GeoPoint::parse(at.0, at.1).unwrap())).unwrap()
}

fn line(s: &str, qty: i64, address_index: usize) -> LineDemand {
    LineDemand {
        sku: sku(s),
        quantity: Quantity::parse(qty).unwrap(),
        address_index,
        needs: Capabilities::default(),
    }
}

fn input(nodes: Vec<Node>, destinations: Vec<Destination>, lines: Vec<LineDemand>) -> RoutingInput {
    RoutingInput {
        currency: Currency::parse("USD").unwrap(),
        nodes,
        destinations,
        lines,
        rules: TenantRules {
            version: 1,
            cutoff_penalty: usd(500),
            rules: vec![],
        },
        budget: SearchBudget::STANDARD,
    }
}

fn decide(input: &RoutingInput) -> Decision {
    match route(input) {
        Ok(d) => d,
        Err(e) => panic!("expected a plan, got {e:?}"),
    }
}

fn no_plan(input: &RoutingInput) -> NoPlan {
    match route(input) {
        Err(RoutingError::NoPlan(n)) => n,
        other => panic!("expected no plan, got {other:?}"),
    }
}

/// (location, address, [(sku, units)]) per package.
type Shipped = Vec<(String, usize, Vec<(String, i64)>)>;

fn shipped(d: &Decision) -> Shipped {
    d.packages
        .iter()
        .map(|p| {
            let lines = p
                .lines
                .iter()
                .map(|l| (l.sku.to_string(), l.quantity))
                .collect();
            (p.location_id.to_string(), p.address_index, lines)
        })
        .collect()
}

fn candidate<'a>(d: &'a [Candidate], id: &str) -> &'a Candidate {
    d.iter()
        .find(|c| c.location_id.as_str() == id)
        .unwrap_or_else(|| panic!("no candidate {id}"))
}

fn from(d: &Decision) -> Vec<&str> {
    d.packages.iter().map(|p| p.location_id.as_str()).collect()
}

#[test]
fn the_nearest_node_with_the_stock_ships_and_the_log_says_why() {
    // The README's order: San Francisco, both warehouses have the shirt.
    let inp = input(
        vec![
            node("wh-east", NEWARK, &[("TEE", 10)]),
            node("wh-west", OAKLAND, &[("TEE", 10)]),
        ],
        vec![to(SF)],
        vec![line("TEE", 2, 0)],
    );
    let d = decide(&inp);
    assert_eq!(
        shipped(&d),
        [("wh-west".to_string(), 0, vec![("TEE".to_string(), 2)])]
    );
    assert_eq!(
        d.reason_codes,
        [ReasonCode::LowestCost, ReasonCode::NearestInStock]
    );
    assert!(d.optimal);
    assert_eq!(d.engine_version, ENGINE_VERSION);
    let west = candidate(&d.candidates, "wh-west");
    assert!(west.selected && west.eligible);
    assert_eq!(
        west.reasons,
        [ReasonCode::LowestCost, ReasonCode::NearestInStock]
    );
    let east = candidate(&d.candidates, "wh-east");
    assert!(east.eligible && !east.selected);
    assert_eq!(east.reasons, [ReasonCode::HigherCost]);
    assert!(east.cost.unwrap().amount > west.cost.unwrap().amount);
    assert_eq!(
        d.candidates[0].location_id.as_str(),
        "wh-west",
        "cheapest candidate first"
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["reason_codes"],
        serde_json::json!(["lowest_cost", "nearest_in_stock"])
    );
}

#[test]
fn package_cost_is_handling_plus_rounded_distance_plus_penalty() {
    // (0,0) → (0,1): 111 195.08 m on the mean sphere → 111 195 m.
    let mut n = node("a", (0.0, 0.0), &[("X", 1)]);
    n.cost_per_100km = usd(1000);
    n.cutoff_passed = true;
    let d =
        Destination::resolve(&cc("US"), None, Some(GeoPoint::parse(0.0, 1.0).unwrap())).unwrap();
    let dec = decide(&input(vec![n], vec![d], vec![line("X", 1, 0)]));
    let p = &dec.packages[0];
    assert_eq!(p.distance_km, 111.2);
    // 1000 × 111 195 / 100 000 = 1 111.95 → 1 112 (half up).
    assert_eq!(
        p.contributions,
        CostContributions {
            handling: usd(300),
            distance: usd(1112),
            cutoff_penalty: usd(500)
        }
    );
    assert_eq!(p.cost, usd(1912));
    assert_eq!(dec.total_cost, usd(1912));
    assert!(dec.reason_codes.contains(&ReasonCode::CutoffPassed));
}

fn needs_rule(needs: Capabilities, give: Capabilities, code: ReasonCode) {
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.capabilities = Capabilities {
        hazmat: true,
        cold_chain: true,
        oversize: true,
    };
    near.capabilities = Capabilities {
        hazmat: !needs.hazmat && near.capabilities.hazmat,
        cold_chain: !needs.cold_chain && near.capabilities.cold_chain,
        oversize: !needs.oversize && near.capabilities.oversize,
    };
    let mut far = node("far", DALLAS, &[("X", 5)]);
    far.capabilities = give;
    let mut l = line("X", 1, 0);
    l.needs = needs;
    let d = decide(&input(vec![near, far], vec![to(SF)], vec![l.clone()]));
    assert_eq!(from(&d), ["far"], "{code:?}");
    let near_c = candidate(&d.candidates, "near");
    assert!(!near_c.eligible && near_c.cost.is_none());
    assert_eq!(near_c.reasons, [code]);
    // Without the need, the near node wins.
    l.needs = Capabilities::default();
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.capabilities = Capabilities::default();
    assert_eq!(
        from(&decide(&input(
            vec![near, node("far", DALLAS, &[("X", 5)])],
            vec![to(SF)],
            vec![l]
        ))),
        ["near"]
    );
}

#[test]
fn hazmat_ships_only_from_hazmat_nodes() {
    let c = Capabilities {
        hazmat: true,
        ..Default::default()
    };
    needs_rule(c, c, ReasonCode::RuleHazmat);
}

#[test]
fn cold_chain_ships_only_from_cold_chain_nodes() {
    let c = Capabilities {
        cold_chain: true,
        ..Default::default()
    };
    needs_rule(c, c, ReasonCode::RuleColdChain);
}

#[test]
fn oversize_ships_only_from_oversize_nodes() {
    let c = Capabilities {
        oversize: true,
        ..Default::default()
    };
    needs_rule(c, c, ReasonCode::RuleOversize);
}

#[test]
fn ships_to_is_respected() {
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.ships_to = vec![cc("CA"), cc("MX")];
    let mut far = node("far", DALLAS, &[("X", 5)]);
    far.ships_to = vec![cc("US")];
    let d = decide(&input(vec![near, far], vec![to(SF)], vec![line("X", 1, 0)]));
    assert_eq!(from(&d), ["far"]);
    assert_eq!(
        candidate(&d.candidates, "near").reasons,
        [ReasonCode::NotShippingToCountry]
    );
}

#[test]
fn inactive_nodes_are_excluded() {
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.active = false;
    let d = decide(&input(
        vec![near, node("far", DALLAS, &[("X", 5)])],
        vec![to(SF)],
        vec![line("X", 1, 0)],
    ));
    assert_eq!(from(&d), ["far"]);
    let c = candidate(&d.candidates, "near");
    assert!(!c.eligible);
    assert_eq!(c.reasons, [ReasonCode::Inactive]);
}

#[test]
fn nodes_at_capacity_are_excluded() {
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.daily_capacity = Some(100);
    near.load_today = 100;
    let d = decide(&input(
        vec![near, node("far", DALLAS, &[("X", 5)])],
        vec![to(SF)],
        vec![line("X", 1, 0)],
    ));
    assert_eq!(from(&d), ["far"]);
    assert_eq!(
        candidate(&d.candidates, "near").reasons,
        [ReasonCode::AtCapacity]
    );
}

#[test]
fn remaining_capacity_limits_the_packages_a_node_ships() {
    // `near` sits between SF and LA and has stock for both, but one package left today.
    let mut near = node("near", (36.0, -120.5), &[("X", 5)]);
    near.daily_capacity = Some(10);
    near.load_today = 9;
    let inp = input(
        vec![near.clone(), node("far", DALLAS, &[("X", 5)])],
        vec![to(SF), to(LA)],
        vec![line("X", 1, 0), line("X", 1, 1)],
    );
    let d = decide(&inp);
    assert_eq!(
        d.packages
            .iter()
            .filter(|p| p.location_id.as_str() == "near")
            .count(),
        1
    );
    assert_eq!(d.packages.len(), 2);
    // Dallas is nearer LA, so `near` keeps its one package for SF.
    assert_eq!(shipped(&d)[0].0, "near");
    assert_eq!(shipped(&d)[1].0, "far");
    // With two packages left it ships both.
    near.load_today = 8;
    let inp2 = RoutingInput {
        nodes: vec![near, node("far", DALLAS, &[("X", 5)])],
        ..inp
    };
    assert_eq!(from(&decide(&inp2)), ["near", "near"]);
}

#[test]
fn a_passed_cutoff_flips_the_choice_through_its_penalty() {
    let mut near = node("near", OAKLAND, &[("X", 5)]);
    near.cutoff_passed = true;
    let inp = input(
        vec![near, node("reno", RENO, &[("X", 5)])],
        vec![to(SF)],
        vec![line("X", 1, 0)],
    );
    let d = decide(&inp);
    assert_eq!(
        from(&d),
        ["reno"],
        "Reno is ~300 km further ($3) but the penalty is $5"
    );
    let c = candidate(&d.candidates, "near");
    assert!(c.eligible);
    assert_eq!(
        c.reasons,
        [ReasonCode::CutoffPassed, ReasonCode::HigherCost]
    );
    assert_eq!(c.contributions.cutoff_penalty, usd(500));
    assert!(!d.reason_codes.contains(&ReasonCode::CutoffPassed));
    // A smaller penalty does not outweigh the distance.
    let mut cheap = inp.clone();
    cheap.rules.cutoff_penalty = usd(100);
    let d = decide(&cheap);
    assert_eq!(from(&d), ["near"]);
    assert!(d.reason_codes.contains(&ReasonCode::CutoffPassed));
}

#[test]
fn tenant_rules_restrict_countries_to_nodes() {
    let nodes = vec![
        node("wh-east", NEWARK, &[("X", 5)]),
        node("wh-west", OAKLAND, &[("X", 5)]),
    ];
    let mut inp = input(nodes, vec![to(SF)], vec![line("X", 1, 0)]);
    inp.rules.rules = vec![TenantRule::CountryOnlyFrom {
        country: cc("US"),
        nodes: vec![loc("wh-east")],
    }];
    let d = decide(&inp);
    assert_eq!(from(&d), ["wh-east"]);
    assert_eq!(
        candidate(&d.candidates, "wh-west").reasons,
        [ReasonCode::TenantRule]
    );
    inp.rules.rules = vec![TenantRule::CountryNeverFrom {
        country: cc("US"),
        nodes: vec![loc("wh-west")],
    }];
    assert_eq!(from(&decide(&inp)), ["wh-east"]);
    // A rule for another country changes nothing.
    inp.rules.rules = vec![TenantRule::CountryOnlyFrom {
        country: cc("CA"),
        nodes: vec![loc("wh-east")],
    }];
    assert_eq!(from(&decide(&inp)), ["wh-west"]);
}

#[test]
fn rules_naming_unknown_nodes_are_rejected_with_paths() {
    let rules = TenantRules {
        version: 3,
        cutoff_penalty: usd(-1),
        rules: vec![
            TenantRule::CountryOnlyFrom {
                country: cc("US"),
                nodes: vec![loc("wh-east"), loc("wh-nowhere")],
            },
            TenantRule::CountryNeverFrom {
                country: cc("CA"),
                nodes: vec![],
            },
        ],
    };
    let errs = rules.validate(&[loc("wh-east")]).unwrap_err();
    let got: Vec<(&str, &str)> = errs
        .0
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cutoff_penalty.amount", "negative"),
            ("rules[0].nodes[1]", "unknown_location"),
            ("rules[1].nodes", "required")
        ]
    );
    let mut inp = input(
        vec![node("wh-east", NEWARK, &[("X", 1)])],
        vec![to(SF)],
        vec![line("X", 1, 0)],
    );
    inp.rules = rules;
    match route(&inp) {
        Err(RoutingError::Invalid(e)) => {
            let paths: Vec<&str> = e.0.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "rules.cutoff_penalty.amount",
                    "rules.rules[0].nodes[1]",
                    "rules.rules[1].nodes"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_inputs_are_reported_with_paths() {
    let mut a = node("a", OAKLAND, &[("X", 1)]);
    a.handling_cost = usd(-5);
    let mut b = node("a", RENO, &[("X", 1)]);
    b.cost_per_100km = Money::new(100, Currency::parse("EUR").unwrap());
    let inp = input(vec![a, b], vec![to(SF)], vec![line("X", 1, 3)]);
    match route(&inp) {
        Err(RoutingError::Invalid(e)) => {
            let got: Vec<(&str, &str)> =
                e.0.iter()
                    .map(|e| (e.path.as_str(), e.code.as_str()))
                    .collect();
            assert_eq!(
                got,
                [
                    ("nodes[0].handling_cost.amount", "negative"),
                    ("nodes[1].id", "duplicate"),
                    ("nodes[1].cost_per_100km.currency", "currency_mismatch"),
                    ("lines[0].address_index", "out_of_range"),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_address_splits_when_no_single_node_has_everything() {
    let inp = input(
        vec![
            node("a", OAKLAND, &[("X", 5)]),
            node("b", RENO, &[("Y", 5)]),
            node("c", DALLAS, &[("X", 1), ("Y", 1)]),
        ],
        vec![to(SF)],
        vec![line("X", 2, 0), line("Y", 2, 0)],
    );
    let d = decide(&inp);
    assert_eq!(
        shipped(&d),
        [
            ("a".to_string(), 0, vec![("X".to_string(), 2)]),
            ("b".to_string(), 0, vec![("Y".to_string(), 2)])
        ]
    );
    assert_eq!(
        d.reason_codes,
        [ReasonCode::LowestCost, ReasonCode::SplitNoSingleNode]
    );
    assert_eq!(
        d.total_cost.amount,
        d.packages.iter().map(|p| p.cost.amount).sum::<i64>()
    );
    assert_eq!(
        candidate(&d.candidates, "c").reasons,
        [ReasonCode::InsufficientStock, ReasonCode::HigherCost]
    );
}

#[test]
fn one_line_splits_by_quantity_when_no_node_holds_it_all() {
    let inp = input(
        vec![
            node("a", OAKLAND, &[("X", 3)]),
            node("b", RENO, &[("X", 2)]),
            node("c", DALLAS, &[("X", 2)]),
        ],
        vec![to(SF)],
        vec![line("X", 5, 0)],
    );
    let d = decide(&inp);
    assert_eq!(
        shipped(&d),
        [
            ("a".to_string(), 0, vec![("X".to_string(), 3)]),
            ("b".to_string(), 0, vec![("X".to_string(), 2)])
        ]
    );
    assert!(d.reason_codes.contains(&ReasonCode::SplitNoSingleNode));
}

#[test]
fn an_address_splits_when_the_split_is_cheaper() {
    // `big` has everything but is across the country; two cheap neighbours hold one SKU each.
    let mut a = node("a", OAKLAND, &[("X", 5)]);
    let mut b = node("b", (37.34, -121.89), &[("Y", 5)]); // San José
    a.handling_cost = usd(100);
    b.handling_cost = usd(100);
    let big = node("big", NEWARK, &[("X", 5), ("Y", 5)]);
    let inp = input(
        vec![a, b, big],
        vec![to(SF)],
        vec![line("X", 1, 0), line("Y", 1, 0)],
    );
    let d = decide(&inp);
    assert_eq!(from(&d), ["a", "b"]);
    assert_eq!(
        d.reason_codes,
        [ReasonCode::LowestCost, ReasonCode::SplitCheaper]
    );
    let big_c = candidate(&d.candidates, "big");
    assert!(d.total_cost.amount < big_c.cost.unwrap().amount);
    // When one package from `big` is cheaper than two, it ships whole.
    let mut near_big = inp.clone();
    near_big.nodes[2].point = GeoPoint::parse(OAKLAND.0, OAKLAND.1).unwrap();
    near_big.nodes[2].handling_cost = usd(150);
    let d = decide(&near_big);
    assert_eq!(from(&d), ["big"]);
    assert_eq!(
        d.reason_codes,
        [ReasonCode::LowestCost, ReasonCode::NearestInStock]
    );
}

#[test]
fn lines_of_two_addresses_share_a_node_stock() {
    // `near` has 3 units; SF and LA want 2 each: one address must come from elsewhere.
    let inp = input(
        vec![
            node("near", (36.0, -120.5), &[("X", 3)]),
            node("far", DALLAS, &[("X", 5)]),
        ],
        vec![to(SF), to(LA)],
        vec![line("X", 2, 0), line("X", 2, 1)],
    );
    let d = decide(&inp);
    let units_near: i64 = d
        .packages
        .iter()
        .filter(|p| p.location_id.as_str() == "near")
        .flat_map(|p| &p.lines)
        .map(|l| l.quantity)
        .sum();
    assert!(units_near <= 3);
    let units: i64 = d
        .packages
        .iter()
        .flat_map(|p| &p.lines)
        .map(|l| l.quantity)
        .sum();
    assert_eq!(units, 4);
}

#[test]
fn no_plan_lists_each_short_line_with_what_eligible_nodes_could_ship() {
    let mut off = node("off", OAKLAND, &[("X", 50), ("Y", 50)]);
    off.active = false;
    let inp = input(
        vec![
            off,
            node("a", RENO, &[("X", 2), ("Y", 9)]),
            node("b", DALLAS, &[("X", 1)]),
        ],
        vec![to(SF)],
        vec![line("X", 5, 0), line("Y", 4, 0), line("Z", 1, 0)],
    );
    let n = no_plan(&inp);
    let got: Vec<(usize, &str, i64, i64)> = n
        .short_lines
        .iter()
        .map(|s| (s.line_index, s.sku.as_str(), s.requested, s.available))
        .collect();
    assert_eq!(got, [(0, "X", 5, 3), (2, "Z", 1, 0)]);
    assert_eq!(n.reason_codes, [ReasonCode::InsufficientStock]);
    assert_eq!(n.candidates.len(), 3);
    assert_eq!(
        candidate(&n.candidates, "off").reasons,
        [ReasonCode::Inactive]
    );
}

#[test]
fn no_plan_when_capacity_is_the_limit() {
    let mut only = node("only", OAKLAND, &[("X", 5)]);
    only.daily_capacity = Some(1);
    let n = no_plan(&input(
        vec![only],
        vec![to(SF), to(LA)],
        vec![line("X", 1, 0), line("X", 1, 1)],
    ));
    assert!(n.short_lines.is_empty());
    assert_eq!(n.reason_codes, [ReasonCode::AtCapacity]);
}

#[test]
fn every_node_is_a_candidate_and_ineligible_ones_come_last() {
    let mut off = node("aa-off", OAKLAND, &[("X", 5)]);
    off.active = false;
    let d = decide(&input(
        vec![
            off,
            node("b", RENO, &[("X", 5)]),
            node("c", DALLAS, &[]),
            node("d", NEWARK, &[("X", 5)]),
        ],
        vec![to(SF)],
        vec![line("X", 1, 0)],
    ));
    let order: Vec<(&str, bool)> = d
        .candidates
        .iter()
        .map(|c| (c.location_id.as_str(), c.eligible))
        .collect();
    assert_eq!(
        order,
        [("b", true), ("d", true), ("aa-off", false), ("c", false)]
    );
    assert_eq!(
        candidate(&d.candidates, "c").reasons,
        [ReasonCode::InsufficientStock]
    );
}

#[test]
fn stock_maps_of_the_whole_catalog_are_read_like_the_order_skus_only() {
    let catalog: Vec<(String, i64)> = (0..40).map(|i| (format!("S{i:02}"), i)).collect();
    let refs: Vec<(&str, i64)> = catalog.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    let big = node("big", OAKLAND, &refs);
    let d = decide(&input(
        vec![big],
        vec![to(SF)],
        vec![line("S07", 7, 0), line("S31", 2, 0)],
    ));
    assert_eq!(
        d.packages[0].lines.iter().map(|l| l.quantity).sum::<i64>(),
        9
    );
    let n = no_plan(&input(
        vec![node("big", OAKLAND, &refs)],
        vec![to(SF)],
        vec![line("S05", 6, 0)],
    ));
    assert_eq!(n.short_lines[0].available, 5);
}

#[test]
fn node_order_in_the_input_does_not_change_the_decision() {
    let nodes = vec![
        node("a", OAKLAND, &[("X", 1), ("Y", 3)]),
        node("b", OAKLAND, &[("X", 1), ("Y", 3)]),
        node("c", RENO, &[("X", 4)]),
        node("d", LA, &[("Y", 2), ("X", 1)]),
    ];
    let inp = input(
        nodes,
        vec![to(SF), to(LA)],
        vec![line("X", 2, 0), line("Y", 2, 0), line("X", 1, 1)],
    );
    let mut rev = inp.clone();
    rev.nodes.reverse();
    let a = serde_json::to_string(&decide(&inp)).unwrap();
    assert_eq!(a, serde_json::to_string(&decide(&rev)).unwrap());
    assert_eq!(a, serde_json::to_string(&decide(&inp)).unwrap());
}

#[test]
fn an_exhausted_budget_returns_the_fallback_plan_marked_as_such() {
    let mut inp = input(
        vec![
            node("a", OAKLAND, &[("X", 5)]),
            node("b", RENO, &[("Y", 5)]),
            node("c", DALLAS, &[("X", 5), ("Y", 5)]),
        ],
        vec![to(SF)],
        vec![line("X", 1, 0), line("Y", 1, 0)],
    );
    inp.budget = SearchBudget { max_expansions: 0 };
    let d = decide(&inp);
    assert!(!d.optimal);
    assert!(d.reason_codes.contains(&ReasonCode::SearchBudgetExhausted));
    assert!(!d.reason_codes.contains(&ReasonCode::LowestCost));
    assert_eq!(
        d.packages
            .iter()
            .flat_map(|p| &p.lines)
            .map(|l| l.quantity)
            .sum::<i64>(),
        2
    );
}

#[test]
fn destinations_fall_back_to_documented_centroids() {
    let us = cc("US");
    let sf = Destination::resolve(&us, Some("94103"), None).unwrap();
    assert_eq!(sf.point_source, PointSource::PostalPrefix);
    assert!((sf.point.lat() - 36.0).abs() < 1e-9, "California's centre");
    let ny = Destination::resolve(&us, Some("10001-1234"), None).unwrap();
    assert!((ny.point.lon() - -74.9).abs() < 1e-9);
    // A military prefix falls back to its ZIP area's centre.
    assert_eq!(us_zip_centroid("09012"), Some((42.0, -72.0)));
    assert_eq!(us_zip_centroid("ABCDE"), None);
    let no_zip = Destination::resolve(&us, Some("n/a"), None).unwrap();
    assert_eq!(no_zip.point_source, PointSource::CountryCentroid);
    for c in [
        "US", "CA", "MX", "GB", "IE", "FR", "DE", "ES", "IT", "NL", "BE", "PT", "AT", "CH", "SE",
        "NO", "DK", "FI", "PL", "AU", "NZ", "JP", "BR",
    ] {
        assert!(Destination::resolve(&cc(c), None, None).is_ok(), "{c}");
    }
    let given = Destination::resolve(
        &cc("DE"),
        Some("10115"),
        Some(GeoPoint::parse(52.5, 13.4).unwrap()),
    )
    .unwrap();
    assert_eq!(given.point_source, PointSource::Coordinates);
    // A German order by centroid goes to the Frankfurt node, not the one in New Jersey.
    let fra = Node {
        country: Some(cc("DE")),
        ..node("fra", (50.1, 8.7), &[("X", 1)])
    };
    let d = decide(&input(
        vec![node("ewr", NEWARK, &[("X", 1)]), fra],
        vec![Destination::resolve(&cc("DE"), None, None).unwrap()],
        vec![line("X", 1, 0)],
    ));
    assert_eq!(from(&d), ["fra"]);
}

#[test]
fn a_country_without_a_centroid_or_coordinates_is_an_error() {
    let e = Destination::resolve(&cc("ZW"), Some("0000"), None).unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.code.as_str()),
        ("country", "unknown_country")
    );
    assert!(
        Destination::resolve(&cc("ZW"), None, Some(GeoPoint::parse(-17.8, 31.0).unwrap())).is_ok()
    );
    assert_eq!(GeoPoint::parse(91.0, 0.0).unwrap_err().path, "lat");
    assert_eq!(GeoPoint::parse(0.0, f64::NAN).unwrap_err().path, "lon");
}

#[test]
fn cutoffs_parse_and_pass_in_the_node_local_time() {
    for bad in ["25:00", "17:60", "5:00", "17-00", ""] {
        assert!(Cutoff::parse(bad).is_err(), "{bad}");
    }
    let c = Cutoff::parse("17:00").unwrap();
    assert_eq!(String::from(c), "17:00");
    // 2026-01-15 22:30 UTC is 16:30 in Chicago (UTC−6) and 23:30 in Berlin (UTC+1).
    let now = 1_768_516_200;
    assert!(!c.has_passed(now, -360));
    assert!(c.has_passed(now, 60));
    assert!(c.has_passed(now + 1800, -360), "17:00 sharp has passed");
}

// ---- property test: the engine against brute force ----------------------------------------

/// Independent re-statement of the hard rules.
fn may_carry(n: &Node, l: &LineDemand, d: &Destination, rules: &TenantRules) -> bool {
    let cap_left = n.daily_capacity.is_none_or(|c| c > n.load_today);
    let ships = n.ships_to.is_empty() || n.ships_to.contains(&d.country);
    let tenant = rules.rules.iter().all(|r| match r {
        TenantRule::CountryOnlyFrom { country, nodes } => {
            *country != d.country || nodes.contains(&n.id)
        }
        TenantRule::CountryNeverFrom { country, nodes } => {
            *country != d.country || !nodes.contains(&n.id)
        }
    });
    let caps = (!l.needs.hazmat || n.capabilities.hazmat)
        && (!l.needs.cold_chain || n.capabilities.cold_chain)
        && (!l.needs.oversize || n.capabilities.oversize);
    n.active && cap_left && ships && tenant && caps
}

fn expected_cost(n: &Node, d: &Destination, penalty: i64) -> i64 {
    let m = n.point.distance_m(&d.point) as i128;
    let dist = (n.cost_per_100km.amount as i128 * m * 2 + 100_000) / 200_000; // half up, written differently
    n.handling_cost.amount + dist as i64 + if n.cutoff_passed { penalty } else { 0 }
}

/// Whether the open (node, address) pairs can carry every line: Edmonds–Karp on a dense matrix.
fn feasible(inp: &RoutingInput, open: &[(usize, usize)]) -> bool {
    let skus: Vec<&Sku> = {
        let mut v: Vec<&Sku> = inp.lines.iter().map(|l| &l.sku).collect();
        v.sort();
        v.dedup();
        v
    };
    let (nl, nn, ns) = (inp.lines.len(), inp.nodes.len(), skus.len());
    let size = 2 + nl + nn * ns;
    let (src, sink) = (0, size - 1);
    let slot = |n: usize, s: usize| 1 + nl + n * ns + s;
    let mut cap = vec![vec![0i64; size]; size];
    for (i, l) in inp.lines.iter().enumerate() {
        cap[src][1 + i] = l.quantity.get();
        let s = skus.iter().position(|x| **x == l.sku).unwrap();
        for &(n, d) in open {
            if d == l.address_index && may_carry(&inp.nodes[n], l, &inp.destinations[d], &inp.rules)
            {
                cap[1 + i][slot(n, s)] = i64::MAX / 4;
            }
        }
    }
    for (n, node) in inp.nodes.iter().enumerate() {
        for (s, sk) in skus.iter().enumerate() {
            cap[slot(n, s)][sink] = node.stock.get(*sk).copied().unwrap_or(0).max(0);
        }
    }
    let mut flow = 0;
    loop {
        let mut prev = vec![usize::MAX; size];
        prev[src] = src;
        let mut q = std::collections::VecDeque::from([src]);
        while let Some(u) = q.pop_front() {
            for v in 0..size {
                if prev[v] == usize::MAX && cap[u][v] > 0 {
                    prev[v] = u;
                    q.push_back(v);
                }
            }
        }
        if prev[sink] == usize::MAX {
            break;
        }
        let mut f = i64::MAX;
        let mut v = sink;
        while v != src {
            f = f.min(cap[prev[v]][v]);
            v = prev[v];
        }
        let mut v = sink;
        while v != src {
            cap[prev[v]][v] -= f;
            cap[v][prev[v]] += f;
            v = prev[v];
        }
        flow += f;
    }
    flow == inp.lines.iter().map(|l| l.quantity.get()).sum::<i64>()
}

/// The cheapest cost over every set of (node, address) pairs within capacity, or `None`.
fn brute_force(inp: &RoutingInput) -> Option<i64> {
    let pairs: Vec<(usize, usize)> = (0..inp.nodes.len())
        .flat_map(|n| (0..inp.destinations.len()).map(move |d| (n, d)))
        .filter(|(n, d)| {
            inp.lines.iter().any(|l| {
                l.address_index == *d
                    && may_carry(&inp.nodes[*n], l, &inp.destinations[*d], &inp.rules)
                    && inp.nodes[*n].stock.get(&l.sku).copied().unwrap_or(0) > 0
            })
        })
        .collect();
    let costs: Vec<i64> = pairs
        .iter()
        .map(|(n, d)| {
            expected_cost(
                &inp.nodes[*n],
                &inp.destinations[*d],
                inp.rules.cutoff_penalty.amount,
            )
        })
        .collect();
    let mut sets: Vec<(i64, u32)> = (0..1u32 << pairs.len())
        .map(|mask| {
            (
                (0..pairs.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| costs[i])
                    .sum(),
                mask,
            )
        })
        .collect();
    sets.sort();
    for (cost, mask) in sets {
        let open: Vec<(usize, usize)> = (0..pairs.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| pairs[i])
            .collect();
        let within_capacity = inp.nodes.iter().enumerate().all(|(n, node)| {
            let used = open.iter().filter(|(k, _)| *k == n).count() as u32;
            node.daily_capacity
                .is_none_or(|c| used <= c.saturating_sub(node.load_today))
        });
        if within_capacity && feasible(inp, &open) {
            return Some(cost);
        }
    }
    None
}

/// A plan must carry every unit, from admitted nodes with the stock, within capacity, with
/// each package priced by the formula and the total their sum.
fn check_plan(inp: &RoutingInput, d: &Decision) -> Result<(), TestCaseError> {
    let mut per_line = vec![0i64; inp.lines.len()];
    let mut taken: HashMap<(&str, &Sku), i64> = HashMap::new();
    let mut pkgs: HashMap<&str, u32> = HashMap::new();
    let mut total = 0;
    for p in &d.packages {
        let n = inp.nodes.iter().find(|n| n.id == p.location_id).unwrap();
        let dest = &inp.destinations[p.address_index];
        prop_assert_eq!(
            p.cost.amount,
            expected_cost(n, dest, inp.rules.cutoff_penalty.amount)
        );
        total += p.cost.amount;
        *pkgs.entry(n.id.as_str()).or_default() += 1;
        prop_assert!(!p.lines.is_empty());
        for pl in &p.lines {
            let l = &inp.lines[pl.line_index];
            prop_assert_eq!(l.address_index, p.address_index);
            prop_assert!(may_carry(n, l, dest, &inp.rules));
            prop_assert!(pl.quantity > 0);
            per_line[pl.line_index] += pl.quantity;
            *taken.entry((n.id.as_str(), &l.sku)).or_default() += pl.quantity;
        }
    }
    prop_assert_eq!(total, d.total_cost.amount);
    for (i, l) in inp.lines.iter().enumerate() {
        prop_assert_eq!(per_line[i], l.quantity.get());
    }
    for ((id, s), q) in taken {
        let n = inp.nodes.iter().find(|n| n.id.as_str() == id).unwrap();
        prop_assert!(q <= n.stock.get(s).copied().unwrap_or(0));
    }
    for (id, count) in pkgs {
        let n = inp.nodes.iter().find(|n| n.id.as_str() == id).unwrap();
        prop_assert!(count <= n.remaining_capacity());
    }
    prop_assert_eq!(d.candidates.len(), inp.nodes.len());
    Ok(())
}

const SKUS: [&str; 4] = ["A", "B", "C", "D"];

fn arb_caps(p: f64) -> impl Strategy<Value = Capabilities> {
    (
        proptest::bool::weighted(p),
        proptest::bool::weighted(p),
        proptest::bool::weighted(p),
    )
        .prop_map(|(hazmat, cold_chain, oversize)| Capabilities {
            hazmat,
            cold_chain,
            oversize,
        })
}

fn arb_node(i: usize) -> impl Strategy<Value = Node> {
    (
        (30i32..48, -124i32..-70),
        arb_caps(0.5),
        proptest::option::weighted(0.4, (0u32..3, 0u32..3)),
        (
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.9),
            0usize..4,
        ),
        (0i64..600, 0i64..300),
        proptest::collection::vec(proptest::option::weighted(0.6, 0i64..6), 4),
    )
        .prop_map(
            move |(
                (lat, lon),
                capabilities,
                cap,
                (cutoff_passed, active, ships),
                (h, km),
                stock,
            )| Node {
                id: loc(&format!("n{i}")),
                point: GeoPoint::parse(lat as f64, lon as f64).unwrap(),
                country: Some(cc("US")),
                ships_to: match ships {
                    0 => vec![cc("CA")],
                    1 => vec![cc("US")],
                    _ => vec![],
                },
                capabilities,
                daily_capacity: cap.map(|(extra, load)| extra + load),
                load_today: cap.map_or(0, |(_, load)| load),
                cutoff_passed,
                handling_cost: usd(h),
                cost_per_100km: usd(km),
                active,
                stock: SKUS
                    .iter()
                    .zip(stock)
                    .filter_map(|(s, q)| q.map(|q| (sku(s), q)))
                    .collect(),
            },
        )
}

fn arb_input() -> impl Strategy<Value = RoutingInput> {
    (1usize..=8, 1usize..=2)
        .prop_flat_map(|(n, dests)| {
            let nodes: Vec<_> = (0..n).map(arb_node).collect();
            let dest = ((30i32..48, -124i32..-70), proptest::bool::weighted(0.8)).prop_map(
                |((lat, lon), us)| {
                    let p = GeoPoint::parse(lat as f64, lon as f64).unwrap();
                    Destination::resolve(&cc(if us { "US" } else { "CA" }), None, Some(p)).unwrap()
                },
            );
            let line =
                (0usize..4, 1i64..6, 0..dests, arb_caps(0.15)).prop_map(|(s, q, a, needs)| {
                    LineDemand {
                        sku: sku(SKUS[s]),
                        quantity: Quantity::parse(q).unwrap(),
                        address_index: a,
                        needs,
                    }
                });
            let rule = proptest::option::weighted(
                0.2,
                (proptest::bool::ANY, proptest::collection::vec(0..n, 1..3)),
            );
            (
                nodes,
                proptest::collection::vec(dest, dests),
                proptest::collection::vec(line, 1..=6),
                rule,
                0i64..800,
            )
        })
        .prop_map(|(nodes, destinations, lines, rule, penalty)| {
            let rules = rule
                .map(|(only, ns)| {
                    let nodes = ns.iter().map(|i| loc(&format!("n{i}"))).collect();
                    if only {
                        TenantRule::CountryOnlyFrom {
                            country: cc("US"),
                            nodes,
                        }
                    } else {
                        TenantRule::CountryNeverFrom {
                            country: cc("US"),
                            nodes,
                        }
                    }
                })
                .into_iter()
                .collect();
            RoutingInput {
                currency: Currency::parse("USD").unwrap(),
                nodes,
                destinations,
                lines,
                rules: TenantRules {
                    version: 1,
                    cutoff_penalty: usd(penalty),
                    rules,
                },
                budget: SearchBudget::STANDARD,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_plan_costs_what_brute_force_finds_cheapest(inp in arb_input()) {
        let best = brute_force(&inp);
        match (route(&inp), best) {
            (Ok(d), Some(cost)) => {
                prop_assert!(d.optimal);
                prop_assert_eq!(d.total_cost.amount, cost);
                check_plan(&inp, &d)?;
                let mut rev = inp.clone();
                rev.nodes.reverse();
                prop_assert_eq!(serde_json::to_string(&route(&rev).unwrap()).unwrap(), serde_json::to_string(&d).unwrap());
            }
            (Err(RoutingError::NoPlan(n)), None) => {
                prop_assert_eq!(n.candidates.len(), inp.nodes.len());
                prop_assert!(!n.reason_codes.contains(&ReasonCode::SearchBudgetExhausted));
            }
            (got, want) => prop_assert!(false, "engine {:?} vs brute force {:?}", got.map(|d| d.total_cost), want),
        }
    }
}
