//! Routing engine benchmark: decision time for 100 nodes × 10 lines and 1,000 nodes × 20 lines
//! on seeded random networks shaped like a retailer's (a few well-stocked warehouses, many
//! partly stocked stores). Prints p50/p99/max over many distinct orders, then criterion's means.
//!
//! Run: `cargo bench -p ordo-domain --bench routing`

use criterion::{Criterion, criterion_group};
use ordo_domain::routing::{
    Capabilities, Destination, GeoPoint, LineDemand, Node, RoutingInput, SearchBudget, TenantRules,
    route,
};
use ordo_domain::{CountryCode, Currency, LocationId, Money, Quantity, Sku};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const CATALOG: usize = 300;

/// One network of `nodes` locations over the contiguous US, and `orders` orders of `lines`
/// lines each (one address; every tenth order has two).
/// How the generated network differs from the standard one.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Standard,
    /// Every node's stock map holds its whole catalog instead of the order's SKUs.
    FullCatalogMaps,
    /// Warehouses hold 30 % of the catalog and stores 10 %: plans need many packages and the
    /// search has many cheap partial combinations to rule out (the budget's worst case).
    SparseStock,
}

fn scenario(
    seed: u64,
    nodes: usize,
    lines: usize,
    orders: usize,
    variant: Variant,
) -> Vec<RoutingInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    let usd = Currency::parse("USD").unwrap();
    let us = CountryCode::parse("US").unwrap();
    let skus: Vec<Sku> = (0..CATALOG)
        .map(|i| Sku::parse(&format!("SKU-{i:04}")).unwrap())
        .collect();
    let network: Vec<Node> = (0..nodes)
        .map(|i| {
            let warehouse = i % 10 == 0;
            let share = match (variant, warehouse) {
                (Variant::SparseStock, true) => 0.3,
                (Variant::SparseStock, false) => 0.1,
                (_, true) => 0.95,
                (_, false) => 0.5,
            };
            let capacity = if warehouse {
                rng.random_range(2_000..10_000)
            } else {
                rng.random_range(50..300)
            };
            Node {
                id: LocationId::parse(&format!("{}-{i:04}", if warehouse { "wh" } else { "st" }))
                    .unwrap(),
                point: GeoPoint::parse(
                    rng.random_range(26.0..48.0),
                    rng.random_range(-123.0..-70.0),
                )
                .unwrap(),
                country: Some(us.clone()),
                ships_to: vec![],
                capabilities: Capabilities {
                    hazmat: warehouse || rng.random_bool(0.1),
                    cold_chain: rng.random_bool(if warehouse { 0.5 } else { 0.1 }),
                    oversize: warehouse || rng.random_bool(0.2),
                },
                daily_capacity: Some(capacity),
                load_today: if rng.random_bool(0.02) {
                    capacity
                } else {
                    rng.random_range(0..capacity)
                },
                cutoff_passed: rng.random_bool(0.3),
                handling_cost: Money::new(
                    if warehouse {
                        rng.random_range(250..400)
                    } else {
                        rng.random_range(400..700)
                    },
                    usd,
                ),
                cost_per_100km: Money::new(rng.random_range(40..160), usd),
                active: rng.random_bool(0.97),
                stock: {
                    let mut held = BTreeMap::new();
                    for s in &skus {
                        if rng.random_bool(share) {
                            held.insert(s.clone(), rng.random_range(0..40));
                        }
                    }
                    held
                },
            }
        })
        .collect();
    (0..orders)
        .map(|o| {
            let addresses = if o % 10 == 9 { 2 } else { 1 };
            let destinations = (0..addresses)
                .map(|_| {
                    let p = GeoPoint::parse(
                        rng.random_range(26.0..48.0),
                        rng.random_range(-123.0..-70.0),
                    )
                    .unwrap();
                    Destination::resolve(&us, None, Some(p)).unwrap()
                })
                .collect();
            let mut picked: Vec<usize> = Vec::new();
            while picked.len() < lines {
                let s = rng.random_range(0..CATALOG);
                if !picked.contains(&s) {
                    picked.push(s);
                }
            }
            let lines: Vec<LineDemand> = picked
                .iter()
                .map(|s| LineDemand {
                    sku: skus[*s].clone(),
                    quantity: Quantity::parse(rng.random_range(1..4)).unwrap(),
                    address_index: rng.random_range(0..addresses),
                    needs: Capabilities {
                        hazmat: rng.random_bool(0.03),
                        cold_chain: rng.random_bool(0.03),
                        oversize: rng.random_bool(0.05),
                    },
                })
                .collect();
            // The caller reads stock for the order's SKUs only (one query by SKU).
            let nodes = network
                .iter()
                .map(|n| {
                    let mut n = n.clone();
                    if variant != Variant::FullCatalogMaps {
                        n.stock
                            .retain(|s, _| lines.iter().any(|l: &LineDemand| l.sku == *s));
                    }
                    n
                })
                .collect();
            RoutingInput {
                currency: usd,
                nodes,
                destinations,
                lines,
                rules: TenantRules {
                    version: 1,
                    cutoff_penalty: Money::new(500, usd),
                    rules: vec![],
                },
                budget: SearchBudget::STANDARD,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Times every order `reps` times and prints the distribution of single decisions.
fn report(name: &str, orders: &[RoutingInput], reps: usize) {
    let mut times = Vec::with_capacity(orders.len() * reps);
    let (mut planned, mut optimal, mut split, mut expansions) = (0, 0, 0, Vec::new());
    for inp in orders {
        if let Ok(d) = route(inp) {
            planned += 1;
            optimal += d.optimal as usize;
            split += (d.packages.len() > inp.destinations.len()) as usize;
            expansions.push(d.expansions);
        }
    }
    for _ in 0..reps {
        for inp in orders {
            let t = Instant::now();
            let _ = black_box(route(black_box(inp)));
            times.push(t.elapsed());
        }
    }
    times.sort();
    expansions.sort();
    println!(
        "{name}: {} decisions: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms | {} of {} orders planned, \
         {optimal} proven optimal, {split} split, search expansions p50 {} max {}",
        times.len(),
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.90).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
        planned,
        orders.len(),
        expansions.get(expansions.len() / 2).copied().unwrap_or(0),
        expansions.last().copied().unwrap_or(0),
    );
}

fn bench_routing(c: &mut Criterion) {
    for (name, nodes, lines) in [
        ("100_nodes_10_lines", 100, 10),
        ("1000_nodes_20_lines", 1_000, 20),
    ] {
        let orders = scenario(16, nodes, lines, 200, Variant::Standard);
        report(name, &orders, if nodes > 100 { 5 } else { 20 });
        if nodes > 100 {
            let whole = scenario(16, nodes, lines, 200, Variant::FullCatalogMaps);
            report(
                &format!("{name}, stock maps of the whole catalog"),
                &whole,
                5,
            );
        }
        let sparse = scenario(16, nodes, lines, 100, Variant::SparseStock);
        report(
            &format!("{name}, sparse stock (search worst case)"),
            &sparse,
            3,
        );
        let mut i = 0;
        c.bench_function(&format!("route/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % orders.len();
                black_box(route(black_box(&orders[i])))
            })
        });
    }
}

criterion_group!(benches, bench_routing);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
