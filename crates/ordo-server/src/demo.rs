//! Demo data for `ordo serve --demo`: a realistic catalog (336 SKUs in 6 categories), four
//! locations with coordinates and stock, a member customer, a few promotion codes and the
//! passkey step-up threshold. Seeding
//! happens once per tenant (a marker in `meta`); a restart with `--demo` never resets anything.
//! Two tenants are seeded (the default one and `acme`) with OAuth2 clients whose well-known demo
//! secrets the CLI prints once at start-up.

use ordo_domain::promotion::{BuyXGetY, Promotion, PromotionKind};
use ordo_domain::{
    Capability, CountryCode, Currency, Cutoff, Fulfilment, Location, LocationId, LocationKind,
    Money, Sku,
};
use ordo_store::{Adjustment, ProductUpsert, StockChange, Store, StoreError};

const MARKER: &str = "demo_seeded";
/// Shoppers confirm orders above this (minor units: $1,000.00) with a passkey.
pub const STEP_UP_THRESHOLD: i64 = 100_000;

const CATEGORIES: &[(&str, &str, &[&str], i64)] = &[
    (
        "TEE",
        "apparel",
        &[
            "Crew Tee",
            "V-Neck Tee",
            "Pocket Tee",
            "Long-Sleeve Tee",
            "Henley",
        ],
        1900,
    ),
    (
        "HOOD",
        "apparel",
        &["Zip Hoodie", "Pullover Hoodie", "Fleece Crew"],
        5400,
    ),
    (
        "SNK",
        "footwear",
        &["Court Sneaker", "Trail Runner", "Canvas Low", "Slip-On"],
        8900,
    ),
    (
        "BAG",
        "bags",
        &["Day Pack", "Tote", "Sling", "Duffel"],
        4500,
    ),
    (
        "MUG",
        "home",
        &["Stoneware Mug", "Travel Mug", "Espresso Cup"],
        1400,
    ),
    ("CNDL", "home", &["Soy Candle", "Reed Diffuser"], 2200),
    (
        "EAR",
        "electronics",
        &[
            "Wireless Earbuds",
            "Over-Ear Headphones",
            "Phone Charger",
            "Power Bank",
        ],
        7900,
    ),
    (
        "BOT",
        "outdoor",
        &["Steel Bottle", "Insulated Flask", "Camp Cup"],
        2900,
    ),
];
const COLORS: &[&str] = &["Black", "White", "Navy", "Olive", "Sand", "Red"];
const SIZES: &[&str] = &["S", "M"];

/// A plausible shipping weight of one unit of the category.
fn weight_grams(category: &str) -> u32 {
    match category {
        "footwear" => 1100,
        "bags" => 800,
        "home" => 450,
        "electronics" => 300,
        "outdoor" => 400,
        _ => 250,
    }
}

fn usd() -> Currency {
    Currency::parse("USD").expect("USD exists")
}

fn id(s: &str) -> LocationId {
    LocationId::parse(s).expect("demo ids are valid")
}

/// Seeds the demo data unless it was seeded before. Returns whether it seeded now.
pub async fn seed(store: &Store, tenant: &str) -> Result<bool, StoreError> {
    if store.meta(tenant, MARKER).await?.is_some() {
        return Ok(false);
    }
    // Four nodes with realistic network settings: where they ship, what they can handle, how many
    // packages a day, the day's last pickup in their own time zone, and what a package costs.
    let node = |id_: &str,
                name: &str,
                kind,
                lat,
                lon,
                (tz, cutoff, capacity): (&str, &str, u32),
                (handling, per_100km): (i64, i64),
                capabilities: &[Capability]| {
        let mut l = Location::new(id(id_), name, kind, lat, lon);
        l.country = CountryCode::parse("US").ok();
        l.ships_to = ["US", "CA"]
            .iter()
            .filter_map(|c| CountryCode::parse(c).ok())
            .collect();
        l.capabilities = capabilities.to_vec();
        l.daily_capacity = Some(capacity);
        l.cutoff = Cutoff::parse(cutoff).ok();
        l.timezone = Some(tz.to_string());
        l.handling_cost = Money::new(handling, usd());
        l.cost_per_100km = Money::new(per_100km, usd());
        l
    };
    let locations = [
        node(
            "wh-east",
            "East Coast DC (Newark, NJ)",
            LocationKind::Warehouse,
            40.7357,
            -74.1724,
            ("America/New_York", "17:00", 5000),
            (350, 40),
            &[Capability::Hazmat, Capability::Oversize],
        ),
        node(
            "wh-west",
            "West Coast DC (Reno, NV)",
            LocationKind::Warehouse,
            39.5296,
            -119.8138,
            ("America/Los_Angeles", "17:00", 5000),
            (350, 40),
            &[Capability::ColdChain, Capability::Oversize],
        ),
        node(
            "store-chicago",
            "Chicago Flagship Store",
            LocationKind::Store,
            41.8864,
            -87.6245,
            ("America/Chicago", "15:00", 200),
            (500, 45),
            &[],
        ),
        node(
            "3pl-dallas",
            "Dallas 3PL",
            LocationKind::ThirdParty,
            32.7767,
            -96.7970,
            ("America/Chicago", "16:00", 2000),
            (300, 50),
            &[Capability::Hazmat],
        ),
    ];
    for l in &locations {
        store.upsert_location(tenant, l).await?;
    }
    // A package from a node past its cut-off ships a day later: $5.00 on its cost.
    let rules = ordo_domain::routing::TenantRules {
        version: 0,
        cutoff_penalty: Money::new(500, usd()),
        rules: vec![],
    };
    let body = serde_json::to_string(&rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_routing_rules_audited(tenant, &body, None).await?;
    let mut n = 0usize;
    for (prefix, category, names, base) in CATEGORIES {
        for (ni, name) in names.iter().enumerate() {
            for (ci, color) in COLORS.iter().enumerate() {
                for size in SIZES {
                    n += 1;
                    let sku = Sku::parse(&format!(
                        "{prefix}-{}-{}-{size}",
                        ni + 1,
                        &color[..3].to_uppercase()
                    ))
                    .expect("demo skus are valid");
                    let price = base + (ni as i64) * 300;
                    let mut attributes = serde_json::Map::new();
                    attributes.insert("color".into(), color.to_string().into());
                    attributes.insert("size".into(), size.to_string().into());
                    store
                        .upsert_product(
                            tenant,
                            &ProductUpsert {
                                sku: sku.clone(),
                                name: format!("{name}, {color}, {size}"),
                                price: Money::new(price, usd()),
                                category: Some(category.to_string()),
                                attributes,
                                // Lithium batteries travel as dangerous goods.
                                fulfilment: Fulfilment {
                                    hazmat: *name == "Power Bank",
                                    cold_chain: false,
                                    weight_grams: Some(weight_grams(category)),
                                },
                            },
                            None,
                        )
                        .await?;
                    // Deterministic, varied stock: some SKUs are scarce, a few sold out in stores.
                    for (li, l) in locations.iter().enumerate() {
                        let units = ((n * 37 + li * 11 + ci * 7) % 60) as i64
                            + if li == 0 { 40 } else { 0 };
                        if units == 0 {
                            continue;
                        }
                        let adj = Adjustment {
                            sku: sku.clone(),
                            location_id: l.id.clone(),
                            change: StockChange::SetOnHand(units),
                            reason: "receipt".into(),
                            note: Some("demo seed".into()),
                        };
                        store
                            .adjust_stock(tenant, &adj, None)
                            .await
                            .map_err(|e| match e {
                                ordo_store::AdjustError::Store(s) => s,
                                other => StoreError::Corrupt(other.to_string()),
                            })?;
                    }
                }
            }
        }
    }
    let promo = Promotion::new;
    let mut welcome = promo("WELCOME10", PromotionKind::Percent { bps: 1000 });
    welcome.per_customer_limit = Some(1);
    let mut save5 = promo(
        "SAVE5",
        PromotionKind::Fixed {
            amount: Money::new(500, usd()),
        },
    );
    save5.min_subtotal = Some(Money::new(3000, usd()));
    let mut ship = promo("FREESHIP", PromotionKind::FreeShipping);
    ship.min_subtotal = Some(Money::new(5000, usd()));
    let mut flash = promo("FLASH50", PromotionKind::Percent { bps: 5000 });
    flash.usage_limit = Some(100);
    let mut expired = promo("SUMMER24", PromotionKind::Percent { bps: 2000 });
    expired.ends_at_ms = Some(1_727_740_800_000); // 2024-10-01
    let tees = BuyXGetY::new(2, 1, vec!["TEE-".into()]).expect("demo promotions are valid");
    let tees = promo("TEES3FOR2", PromotionKind::BuyXGetY(tees));
    for p in [welcome, save5, ship, flash, expired, tees] {
        store.upsert_promotion(tenant, &p).await?;
    }
    store
        .upsert_customer(
            tenant,
            "cus_demo_ana",
            "ana@example.com",
            "Ana Lima",
            Some("+14155550100"),
        )
        .await?;
    store
        .set_step_up_threshold(tenant, Some(STEP_UP_THRESHOLD))
        .await?;
    store.set_meta(tenant, MARKER, &n.to_string()).await?;
    tracing::info!(products = n, "demo data seeded");
    Ok(true)
}

/// A demo client and its secret (printed by `ordo serve --demo`, never logged).
#[derive(Debug, Clone)]
pub struct DemoCredential {
    pub tenant: String,
    pub client_id: &'static str,
    pub secret: &'static str,
    pub role: crate::auth::Role,
}

/// The demo clients: the default tenant's app, admin and staff clients, and `acme`'s app and admin.
pub fn credentials(default_tenant: &str) -> Vec<DemoCredential> {
    use crate::auth::Role;
    let c = |tenant: &str, client_id, secret, role| DemoCredential {
        tenant: tenant.to_string(),
        client_id,
        secret,
        role,
    };
    vec![
        c(default_tenant, "demo-app", "demo-secret", Role::App),
        c(
            default_tenant,
            "demo-admin",
            "demo-admin-secret",
            Role::Admin,
        ),
        c(
            default_tenant,
            "demo-staff",
            "demo-staff-secret",
            Role::Staff,
        ),
        c(SECOND_TENANT, "acme-app", "acme-secret", Role::App),
        c(
            SECOND_TENANT,
            "acme-admin",
            "acme-admin-secret",
            Role::Admin,
        ),
    ]
}

/// The second demo tenant, to see isolation at work.
pub const SECOND_TENANT: &str = "acme";

/// Seeds both demo tenants and their clients (each only once). Returns the credentials.
pub async fn seed_all(
    store: &Store,
    default_tenant: &str,
) -> Result<Vec<DemoCredential>, crate::services::ServiceError> {
    seed(store, default_tenant).await?;
    if default_tenant != SECOND_TENANT {
        seed(store, SECOND_TENANT).await?;
    }
    let creds = credentials(default_tenant);
    for c in &creds {
        crate::services::accounts::create_client(
            store,
            &c.tenant,
            c.client_id,
            c.role,
            None,
            &[],
            Some(c.secret.to_string()),
        )
        .await?;
    }
    Ok(creds)
}
