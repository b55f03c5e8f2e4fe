//! The storage conformance suite: the same behaviour from both backends. Runs on SQLite always
//! and on PostgreSQL when ORDO_TEST_DATABASE_URL is set (each test gets a fresh database).

use ordo_domain::contact::GuestContact;
use ordo_domain::order::OrderLine;
use ordo_domain::payment::{CardBrand, Tender, TenderStatus};
use ordo_domain::pricing::Totals;
use ordo_domain::promotion::{Promotion, PromotionKind};
use ordo_domain::{
    Currency, Customer, Email, Location, LocationId, LocationKind, Money, Order, OrderId,
    OrderNumber, OrderStatus, PhoneE164, Sku,
};
use ordo_store::{
    AdjustError, Adjustment, AuthorizationStatus, CartRecord, CartSave, Claim, IdempotencyKey,
    Idempotent, NewOrder, PendingAuthorization, PlaceError, ProductUpsert, StockChange, Store,
    StoreError, TokenRecord,
};

const T: &str = "t1";

struct Fixture {
    store: Store,
    _tmp: tempfile::TempDir,
    pg_url: Option<ordo_store::StorageConfig>,
}

fn usd(a: i64) -> Money {
    Money::new(a, Currency::parse("USD").unwrap())
}
fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = ordo_store::testing::test_storage(tmp.path()).await.unwrap();
    let store = Store::open(&cfg).await.unwrap();
    // Opening again re-runs migrations harmlessly.
    Store::open(&cfg).await.unwrap().close().await;
    for id in ["a", "b"] {
        store
            .upsert_location(
                T,
                &Location::new(loc(id), id, LocationKind::Warehouse, 1.0, 2.0),
            )
            .await
            .unwrap();
    }
    let pg_url = match &cfg {
        ordo_store::StorageConfig::Postgres { .. } => Some(cfg.clone()),
        _ => None,
    };
    Fixture {
        store,
        _tmp: tmp,
        pg_url,
    }
}

impl Fixture {
    async fn product(&self, s: &str, price: i64, stock: &[(&str, i64)]) {
        self.store
            .upsert_product(
                T,
                &ProductUpsert {
                    sku: sku(s),
                    name: s.into(),
                    price: usd(price),
                    category: None,
                    attributes: Default::default(),
                    fulfilment: Default::default(),
                },
                None,
            )
            .await
            .unwrap();
        for (l, n) in stock {
            let a = Adjustment {
                sku: sku(s),
                location_id: loc(l),
                change: StockChange::SetOnHand(*n),
                reason: "count".into(),
                note: None,
            };
            self.store.adjust_stock(T, &a, None).await.unwrap();
        }
    }
    async fn token(&self, name: &str) -> String {
        let t = TokenRecord {
            token: name.into(),
            brand: "visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2031,
            outcome: "approve".into(),
            order_id: None,
        };
        self.store.insert_payment_token(T, &t, None).await.unwrap();
        name.to_string()
    }
    async fn token_owned(&self, i: usize) -> String {
        self.token(&format!("btok{i}")).await
    }
}

fn order(lines: &[(&str, i64, i64)], tokens: &[&str], promos: &[&str]) -> Order {
    let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
    Order {
        id: OrderId::new(),
        number: OrderNumber::generate(),
        status: OrderStatus::Placed,
        channel: "test".into(),
        customer: Customer::Guest(GuestContact {
            email: Email::parse("a@example.com").unwrap(),
            phone: PhoneE164::parse("+14155550100").unwrap(),
            name: "A".into(),
        }),
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (s, q, p))| OrderLine {
                line_no: i as i64 + 1,
                sku: sku(s),
                name: s.to_string(),
                quantity: *q,
                unit_price: usd(*p),
                line_total: usd(q * p),
                shipped: 0,
                cancelled: 0,
                returned: 0,
            })
            .collect(),
        // One address, with coordinates, receiving every line.
        shipments: vec![ordo_domain::pricing::ShipmentRequest {
            address: ordo_domain::Address {
                name: "A".into(),
                line1: "1 Main St".into(),
                line2: None,
                city: "Springfield".into(),
                region: None,
                postal_code: "62701".into(),
                country: ordo_domain::CountryCode::parse("US").unwrap(),
                phone: None,
                lat: Some(1.5),
                lon: Some(2.5),
            },
            lines: lines
                .iter()
                .map(|(s, q, _)| ordo_domain::pricing::LineRequest {
                    sku: sku(s),
                    quantity: *q,
                })
                .collect(),
        }],
        payments: tokens
            .iter()
            .map(|t| Tender {
                token: t.to_string(),
                brand: CardBrand::Visa,
                last4: "4242".into(),
                amount: usd(total),
                authorization_id: "auth_x".into(),
                status: TenderStatus::Authorized,
                authorized: Some(usd(total)),
                captured: Some(usd(0)),
                refunded: Some(usd(0)),
                voided: Some(usd(0)),
            })
            .collect(),
        promotions: promos
            .iter()
            .map(|c| ordo_domain::pricing::AppliedPromotion {
                code: c.to_string(),
                kind: "percent".into(),
                amount: usd(0),
            })
            .collect(),
        totals: Totals {
            subtotal: usd(total),
            discount: usd(0),
            shipping: usd(0),
            tax: usd(0),
            total: usd(total),
        },
        allocations: vec![],
        fulfillments: vec![],
        cart_id: None,
        shipping_option: None,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn idem(key: &str) -> IdempotencyKey {
    IdempotencyKey {
        key: key.into(),
        request_hash: format!("h-{key}"),
    }
}

/// Claims `key` (as checkout does before the gateway) and returns the order ready to place.
async fn claimed(store: &Store, order: Order, key: &str) -> NewOrder {
    let claim_id = match store.claim_checkout(T, &idem(key), 0, &[]).await.unwrap() {
        Claim::Claimed { claim_id } => claim_id,
        Claim::Existing(rec) => panic!("key {key} already has a record: {rec:?}"),
    };
    NewOrder {
        order,
        customer_key: "guest:a@example.com".into(),
        idempotency_key: key.into(),
        claim_id,
        authorization_ids: vec![],
    }
}

async fn reserved(f: &Fixture, s: &str) -> i64 {
    f.store
        .stock_levels(T, &sku(s))
        .await
        .unwrap()
        .iter()
        .map(|l| l.reserved)
        .sum()
}

#[tokio::test]
async fn placement_splits_across_locations_and_records_allocations() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 3), ("b", 4)]).await;
    let t = f.token("tok1").await;
    let placed = f
        .store
        .place(
            T,
            claimed(&f.store, order(&[("A", 6, 500)], &[&t], &[]), "k1").await,
        )
        .await
        .unwrap();
    let mut alloc: Vec<(String, i64)> = placed
        .allocations
        .iter()
        .map(|a| (a.location_id.to_string(), a.quantity))
        .collect();
    alloc.sort();
    // Neither location alone holds 6: both ship, each within its stock (the engine's split).
    assert_eq!(
        alloc.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"],
        "{alloc:?}"
    );
    assert_eq!(alloc.iter().map(|a| a.1).sum::<i64>(), 6);
    assert!(alloc[0].1 <= 3 && alloc[1].1 <= 4, "{alloc:?}");
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("A")).await.unwrap(),
        (7, 6, 6)
    );
    let by_number = f
        .store
        .order(T, placed.number.as_str())
        .await
        .unwrap()
        .unwrap();
    let by_id = f
        .store
        .order(T, &placed.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_number, placed);
    assert_eq!(by_id, placed);
    let rec = f.store.idempotency_record(T, "k1").await.unwrap().unwrap();
    assert_eq!(rec.status, 201);
    assert_eq!(
        serde_json::from_str::<Order>(rec.response.as_deref().unwrap()).unwrap(),
        placed
    );
}

#[tokio::test]
async fn a_failed_placement_leaves_nothing_behind() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 10)]).await;
    f.product("B", 700, &[("a", 1)]).await;
    let t = f.token("tok1").await;
    // B is short: A's reservation, the token use and the key claim are all rolled back.
    match f
        .store
        .place(
            T,
            claimed(
                &f.store,
                order(&[("A", 2, 500), ("B", 2, 700)], &[&t], &[]),
                "k1",
            )
            .await,
        )
        .await
    {
        Err(PlaceError::Shortage(s)) => assert_eq!(
            (s[0].sku.as_str(), s[0].requested, s[0].available),
            ("B", 2, 1)
        ),
        other => panic!("expected a shortage, got {other:?}"),
    }
    assert_eq!(reserved(&f, "A").await, 0);
    assert!(f.store.idempotency_record(T, "k1").await.unwrap().is_none());
    assert!(
        f.store
            .payment_token(T, &t)
            .await
            .unwrap()
            .unwrap()
            .order_id
            .is_none()
    );
    // A stale price is refused.
    match f
        .store
        .place(
            T,
            claimed(&f.store, order(&[("A", 1, 499)], &[&t], &[]), "k2").await,
        )
        .await
    {
        Err(PlaceError::PriceMoved(m)) => assert_eq!(m[0].2, Some(usd(500))),
        other => panic!("expected a price move, got {other:?}"),
    }
    // Then it succeeds, and the same key is taken afterwards.
    f.store
        .place(
            T,
            claimed(&f.store, order(&[("A", 1, 500)], &[&t], &[]), "k3").await,
        )
        .await
        .unwrap();
    let _ = f.token("tok2").await;
    match f
        .store
        .claim_checkout(T, &idem("k3"), i64::MAX, &[])
        .await
        .unwrap()
    {
        Claim::Existing(rec) => assert_eq!(
            rec.status, 201,
            "an answered key is never claimed again, whatever the lease"
        ),
        other => panic!("expected k3's answer, got {other:?}"),
    }
    // A used token cannot pay twice.
    assert!(matches!(
        f.store
            .place(
                T,
                claimed(&f.store, order(&[("A", 1, 500)], &[&t], &[]), "k4").await
            )
            .await,
        Err(PlaceError::TokenUsed(0))
    ));
    assert_eq!(f.store.count_orders(T).await.unwrap(), 1);
    assert_eq!(reserved(&f, "A").await, 1);
}

#[tokio::test]
async fn promotion_usage_limits_hold_under_concurrency() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 1000)]).await;
    let p = Promotion {
        usage_limit: Some(5),
        ..Promotion::new("LIMITED", PromotionKind::Percent { bps: 1000 })
    };
    f.store.upsert_promotion(T, &p).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..20 {
        let t = f.token(&format!("tok{i}")).await;
        let store = f.store.clone();
        let mut nw = claimed(
            &f.store,
            order(&[("A", 1, 500)], &[&t], &["LIMITED"]),
            &format!("k{i}"),
        )
        .await;
        nw.customer_key = format!("guest:{i}@example.com");
        handles.push(tokio::spawn(async move { store.place(T, nw).await }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(PlaceError::PromotionExhausted(c)) => assert_eq!(c, "LIMITED"),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(
        f.store.promotions(T, &["LIMITED".into()]).await.unwrap()["LIMITED"].times_used,
        5
    );
    // The same limit through one batch.
    let p2 = Promotion {
        code: "FIVE".into(),
        usage_limit: Some(3),
        ..p
    };
    f.store.upsert_promotion(T, &p2).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..6 {
        let t = f.token(&format!("ptok{i}")).await;
        let mut nw = claimed(
            &f.store,
            order(&[("A", 1, 500)], &[&t], &["FIVE"]),
            &format!("pk{i}"),
        )
        .await;
        nw.customer_key = format!("guest:p{i}@example.com");
        batch.push((T.to_string(), nw));
    }
    let r = f.store.place_batch(batch).await;
    assert_eq!(r.iter().filter(|x| x.is_ok()).count(), 3);
    assert!(
        r[3..]
            .iter()
            .all(|x| matches!(x, Err(PlaceError::PromotionExhausted(_))))
    );
    assert_eq!(
        f.store.promotions(T, &["FIVE".into()]).await.unwrap()["FIVE"].times_used,
        3
    );
    assert_eq!(Store::batch_fallbacks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_placements_never_oversell_across_locations() {
    let f = fixture().await;
    f.product("HOT", 100, &[("a", 17), ("b", 13)]).await;
    f.product("COLD", 100, &[("a", 1000)]).await;
    let mut handles = Vec::new();
    for i in 0..100 {
        let t = f.token(&format!("tok{i}")).await;
        let store = f.store.clone();
        // Half the orders also take a second SKU, in the other order, to exercise lock ordering.
        let lines: Vec<(&str, i64, i64)> = if i % 2 == 0 {
            vec![("HOT", 1, 100)]
        } else {
            vec![("COLD", 1, 100), ("HOT", 1, 100)]
        };
        let nw = claimed(&f.store, order(&lines, &[&t], &[]), &format!("k{i}")).await;
        handles.push(tokio::spawn(async move { store.place(T, nw).await }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(PlaceError::Shortage(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 30);
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("HOT")).await.unwrap(),
        (30, 30, 30)
    );
    for l in f.store.stock_levels(T, &sku("HOT")).await.unwrap() {
        assert_eq!(l.available(), 0);
    }
}

#[tokio::test]
async fn adjustments_refuse_to_undercut_reservations() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let t = f.token("tok1").await;
    f.store
        .place(
            T,
            claimed(&f.store, order(&[("A", 4, 500)], &[&t], &[]), "k1").await,
        )
        .await
        .unwrap();
    let a = |change| Adjustment {
        sku: sku("A"),
        location_id: loc("a"),
        change,
        reason: "damage".into(),
        note: None,
    };
    match f
        .store
        .adjust_stock(T, &a(StockChange::Delta(-2)), None)
        .await
    {
        Err(AdjustError::BelowReserved { would_be, reserved }) => {
            assert_eq!((would_be, reserved), (3, 4))
        }
        other => panic!("{other:?}"),
    }
    let Idempotent::Done(level) = f
        .store
        .adjust_stock(T, &a(StockChange::Delta(-1)), None)
        .await
        .unwrap()
    else {
        panic!("no key, no replay")
    };
    assert_eq!(
        (level.on_hand, level.reserved, level.available()),
        (4, 4, 0)
    );
    assert!(matches!(
        f.store
            .adjust_stock(
                T,
                &Adjustment {
                    sku: sku("NOPE"),
                    ..a(StockChange::Delta(1))
                },
                None
            )
            .await,
        Err(AdjustError::UnknownSku(_))
    ));
    assert!(matches!(
        f.store
            .adjust_stock(
                T,
                &Adjustment {
                    location_id: loc("zzz"),
                    ..a(StockChange::Delta(1))
                },
                None
            )
            .await,
        Err(AdjustError::UnknownLocation(_))
    ));
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    assert!(f.store.product("other", &sku("A")).await.unwrap().is_none());
    assert_eq!(
        f.store
            .list_products("other", None, None, 10)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        f.store
            .list_products(T, None, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let cart = serde_json::json!({"lines": []});
    let rec = CartRecord {
        id: "cart_1".into(),
        body: cart.clone(),
        quoted: serde_json::json!({}),
        created_at_ms: 1,
        updated_at_ms: 1,
        order_id: None,
    };
    f.store.create_cart(T, &rec, None).await.unwrap();
    assert!(f.store.cart("other", "cart_1").await.unwrap().is_none());
    assert_eq!(f.store.cart(T, "cart_1").await.unwrap().unwrap().body, cart);
}

#[tokio::test]
async fn a_batch_commits_together_but_fails_order_by_order() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 3)]).await;
    f.product("B", 700, &[("b", 10)]).await;
    let t: Vec<String> = futures::future::join_all((0..6).map(|i| f.token_owned(i))).await;
    let mut lost = claimed(&f.store, order(&[("B", 1, 700)], &[&t[3]], &[]), "b5").await;
    lost.claim_id = "clm_someone_else".into(); // a retry took the claim over after its lease
    let batch = vec![
        (
            T.to_string(),
            claimed(&f.store, order(&[("A", 2, 500)], &[&t[0]], &[]), "b1").await,
        ), // ok
        (
            T.to_string(),
            claimed(&f.store, order(&[("A", 2, 500)], &[&t[1]], &[]), "b2").await,
        ), // short: 1 left
        (
            T.to_string(),
            claimed(&f.store, order(&[("B", 1, 700)], &[&t[0]], &[]), "b3").await,
        ), // token already used by b1
        (
            T.to_string(),
            claimed(&f.store, order(&[("B", 1, 699)], &[&t[2]], &[]), "b4").await,
        ), // stale price
        (T.to_string(), lost), // its claim is not this attempt's
        (
            T.to_string(),
            claimed(
                &f.store,
                order(&[("A", 1, 500), ("B", 2, 700)], &[&t[4]], &[]),
                "b6",
            )
            .await,
        ), // ok
    ];
    let r = f.store.place_batch(batch).await;
    assert!(r[0].is_ok());
    assert!(matches!(&r[1], Err(PlaceError::Shortage(s)) if s[0].available == 1));
    assert!(matches!(&r[2], Err(PlaceError::TokenUsed(0))), "{:?}", r[2]);
    assert!(matches!(&r[3], Err(PlaceError::PriceMoved(_))));
    assert!(matches!(&r[4], Err(PlaceError::ClaimLost)), "{:?}", r[4]);
    assert!(r[5].is_ok());
    assert_eq!(
        Store::batch_fallbacks(),
        0,
        "the set-based path placed the batch"
    );
    let rec = f.store.idempotency_record(T, "b1").await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<Order>(rec.response.as_deref().unwrap()).unwrap(),
        *r[0].as_ref().unwrap()
    );
    for failed in ["b2", "b3", "b4"] {
        assert!(
            f.store
                .idempotency_record(T, failed)
                .await
                .unwrap()
                .is_none(),
            "{failed}'s claim is released: a retry is evaluated afresh"
        );
    }
    assert_eq!(
        f.store
            .idempotency_record(T, "b5")
            .await
            .unwrap()
            .unwrap()
            .status,
        0,
        "a lost claim is left to its holder"
    );
    assert_eq!(f.store.count_orders(T).await.unwrap(), 2);
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("A")).await.unwrap(),
        (3, 3, 3)
    );
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("B")).await.unwrap(),
        (10, 2, 2)
    );
    // Tokens of failed batch-mates stay usable.
    assert!(
        f.store
            .payment_token(T, &t[2])
            .await
            .unwrap()
            .unwrap()
            .order_id
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_placer_groups_concurrent_orders_without_overselling() {
    let f = fixture().await;
    f.product("HOT", 100, &[("a", 40), ("b", 10)]).await;
    // A second handle on the same storage with small batches and an added wait.
    let cfg = match f.store.backend() {
        ordo_store::Backend::Sqlite => ordo_store::StorageConfig::Sqlite {
            data_dir: f._tmp.path().to_path_buf(),
        },
        ordo_store::Backend::Postgres => f.pg_url.clone().expect("postgres url"),
    };
    let placer = Store::open_with(
        &cfg,
        ordo_store::BatchConfig {
            max_orders: 16,
            max_wait: std::time::Duration::from_millis(2),
            workers: 2,
            queue_capacity: 4096,
        },
    )
    .await
    .unwrap();
    let mut handles = Vec::new();
    for i in 0..150 {
        let t = f.token(&format!("tok{i}")).await;
        let placer = placer.clone();
        let nw = claimed(
            &f.store,
            order(&[("HOT", 1, 100)], &[&t], &[]),
            &format!("k{i}"),
        )
        .await;
        handles.push(tokio::spawn(async move { placer.place(T, nw).await }));
    }
    let mut ok = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(PlaceError::Shortage(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("HOT")).await.unwrap(),
        (50, 50, 50)
    );
}

#[tokio::test]
async fn a_claim_keeps_duplicates_out_until_its_lease_ends() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let t = f.token("tok1").await;
    let auth = PendingAuthorization {
        id: "pa_1".into(),
        token: t.clone(),
        amount: usd(500),
    };
    let now = ordo_store::now_ms();
    let first = match f
        .store
        .claim_checkout(T, &idem("k"), 0, std::slice::from_ref(&auth))
        .await
        .unwrap()
    {
        Claim::Claimed { claim_id } => claim_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        f.store
            .authorization_counts(T)
            .await
            .unwrap()
            .get("pending"),
        Some(&1),
        "recorded in the claim's commit"
    );
    // A duplicate inside the lease sees the claim in progress and records nothing.
    let dup = PendingAuthorization {
        id: "pa_2".into(),
        ..auth.clone()
    };
    match f
        .store
        .claim_checkout(T, &idem("k"), now - 60_000, std::slice::from_ref(&dup))
        .await
        .unwrap()
    {
        Claim::Existing(rec) => assert!(rec.in_progress()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.store
            .authorization_counts(T)
            .await
            .unwrap()
            .get("pending"),
        Some(&1)
    );
    // Another body under the key never takes it over.
    let other = IdempotencyKey {
        key: "k".into(),
        request_hash: "another".into(),
    };
    assert!(matches!(
        f.store
            .claim_checkout(T, &other, i64::MAX, &[])
            .await
            .unwrap(),
        Claim::Existing(_)
    ));
    // After the lease, the same request takes it over; the first attempt can no longer commit.
    let second = match f
        .store
        .claim_checkout(T, &idem("k"), i64::MAX, &[])
        .await
        .unwrap()
    {
        Claim::Claimed { claim_id } => claim_id,
        other => panic!("{other:?}"),
    };
    assert_ne!(first, second);
    let stale = NewOrder {
        order: order(&[("A", 1, 500)], &[&t], &[]),
        customer_key: "g".into(),
        idempotency_key: "k".into(),
        claim_id: first,
        authorization_ids: vec![],
    };
    assert!(matches!(
        f.store.place(T, stale).await,
        Err(PlaceError::ClaimLost)
    ));
    let fresh = NewOrder {
        order: order(&[("A", 1, 500)], &[&t], &[]),
        customer_key: "g".into(),
        idempotency_key: "k".into(),
        claim_id: second,
        authorization_ids: vec![],
    };
    f.store.place(T, fresh).await.unwrap();
    assert_eq!(f.store.count_orders(T).await.unwrap(), 1);
}

#[tokio::test]
async fn gateway_ids_reach_recovery() {
    let f = fixture().await;
    let t = f.token("tok1").await;
    let auths = [
        PendingAuthorization {
            id: "pa_a".into(),
            token: t.clone(),
            amount: usd(100),
        },
        PendingAuthorization {
            id: "pa_b".into(),
            token: t.clone(),
            amount: usd(200),
        },
    ];
    assert!(matches!(
        f.store
            .claim_checkout(T, &idem("k"), 0, &auths)
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    f.store
        .record_gateway_authorizations(T, &[("pa_a".into(), "gw_123".into())])
        .await
        .unwrap();
    let stale = f.store.stale_authorizations(i64::MAX).await.unwrap();
    let by_id = |id: &str| stale.iter().find(|s| s.id == id).cloned().unwrap();
    assert_eq!(
        by_id("pa_a").gateway_authorization.as_deref(),
        Some("gw_123")
    );
    assert_eq!(
        by_id("pa_b").gateway_authorization,
        None,
        "crashed before the gateway answered: voided by reference"
    );
    let claimed = f
        .store
        .claim_for_void(T, &["pa_a".into(), "pa_b".into()])
        .await
        .unwrap();
    assert_eq!(
        claimed,
        vec![
            ("pa_a".to_string(), Some("gw_123".to_string())),
            ("pa_b".to_string(), None)
        ]
    );
    f.store
        .finish_authorizations(T, &["pa_a".into()], AuthorizationStatus::Voided)
        .await
        .unwrap();
    let counts = f.store.authorization_counts(T).await.unwrap();
    assert_eq!(
        (counts.get("voided"), counts.get("voiding")),
        (Some(&1), Some(&1))
    );
}

#[tokio::test]
async fn an_adjustment_under_one_key_happens_once() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let a = Adjustment {
        sku: sku("A"),
        location_id: loc("a"),
        change: StockChange::Delta(7),
        reason: "receipt".into(),
        note: None,
    };
    let render: ordo_store::Render<ordo_domain::StockLevel> =
        std::sync::Arc::new(|l| (201, format!("{{\"on_hand\":{}}}", l.on_hand)));
    let key = IdempotencyKey {
        key: "receipt-1".into(),
        request_hash: "h".into(),
    };
    let first = f
        .store
        .adjust_stock(T, &a, Some((key.clone(), render.clone())))
        .await
        .unwrap();
    assert!(matches!(first, Idempotent::Done(ref l) if l.on_hand == 12));
    match f
        .store
        .adjust_stock(T, &a, Some((key.clone(), render.clone())))
        .await
        .unwrap()
    {
        Idempotent::Replay(rec) => assert_eq!(
            (rec.status, rec.response.as_deref()),
            (201, Some("{\"on_hand\":12}"))
        ),
        other => panic!("a retried receipt must not add stock again: {other:?}"),
    }
    assert_eq!(
        f.store.stock_reconciliation(T, &sku("A")).await.unwrap().0,
        12
    );
    // A refused adjustment stores no answer: its retry is evaluated again.
    let unknown = Adjustment {
        sku: sku("NOPE"),
        ..a.clone()
    };
    let k2 = IdempotencyKey {
        key: "receipt-2".into(),
        request_hash: "h2".into(),
    };
    assert!(matches!(
        f.store
            .adjust_stock(T, &unknown, Some((k2.clone(), render.clone())))
            .await,
        Err(AdjustError::UnknownSku(_))
    ));
    assert!(
        f.store
            .idempotency_record(T, "receipt-2")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_ordered_cart_is_read_only() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let t = f.token("tok1").await;
    let rec = CartRecord {
        id: "cart_9".into(),
        body: serde_json::json!({"v": 1}),
        quoted: serde_json::json!({}),
        created_at_ms: 1,
        updated_at_ms: 1,
        order_id: None,
    };
    f.store.create_cart(T, &rec, None).await.unwrap();
    assert!(matches!(
        f.store
            .sync_cart(
                T,
                "cart_9",
                &serde_json::json!({"v": 2}),
                &serde_json::json!({}),
                2
            )
            .await
            .unwrap(),
        CartSave::Saved(_)
    ));
    let mut o = order(&[("A", 1, 500)], &[&t], &[]);
    o.cart_id = Some("cart_9".into());
    let placed = f
        .store
        .place(T, claimed(&f.store, o, "k").await)
        .await
        .unwrap();
    match f
        .store
        .sync_cart(
            T,
            "cart_9",
            &serde_json::json!({"v": 3}),
            &serde_json::json!({}),
            3,
        )
        .await
        .unwrap()
    {
        CartSave::Ordered(order_id) => assert_eq!(order_id, placed.id.to_string()),
        other => panic!("an ordered cart changed: {other:?}"),
    }
    assert_eq!(
        f.store.cart(T, "cart_9").await.unwrap().unwrap().body,
        serde_json::json!({"v": 2})
    );
}

#[tokio::test]
async fn promotion_rules_are_checked_again_at_commit() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 50)]).await;
    let t1 = f.token("tok1").await;
    let t2 = f.token("tok2").await;
    // Priced while the code was valid; it expired (or its minimum rose) before the commit.
    let expired = Promotion {
        ends_at_ms: Some(1),
        ..Promotion::new("GONE", PromotionKind::Percent { bps: 1000 })
    };
    f.store.upsert_promotion(T, &expired).await.unwrap();
    match f
        .store
        .place(
            T,
            claimed(&f.store, order(&[("A", 1, 500)], &[&t1], &["GONE"]), "k1").await,
        )
        .await
    {
        Err(PlaceError::PromotionInvalid(code, reason)) => assert_eq!(
            (code.as_str(), reason),
            ("GONE", ordo_domain::promotion::PromoRejection::Expired)
        ),
        other => panic!("{other:?}"),
    }
    let minimum = Promotion {
        min_subtotal: Some(usd(10_000)),
        ..Promotion::new("BIG", PromotionKind::Percent { bps: 1000 })
    };
    f.store.upsert_promotion(T, &minimum).await.unwrap();
    assert!(matches!(
        f.store
            .place(
                T,
                claimed(&f.store, order(&[("A", 1, 500)], &[&t2], &["BIG"]), "k2").await
            )
            .await,
        Err(PlaceError::PromotionInvalid(
            _,
            ordo_domain::promotion::PromoRejection::MinSubtotalNotMet
        ))
    ));
    // Two orders of one customer in one batch: a once-per-customer code is used once.
    let once = Promotion {
        per_customer_limit: Some(1),
        ..Promotion::new("ONCE", PromotionKind::Percent { bps: 1000 })
    };
    f.store.upsert_promotion(T, &once).await.unwrap();
    let t3 = f.token("tok3").await;
    let t4 = f.token("tok4").await;
    let batch = vec![
        (
            T.to_string(),
            claimed(&f.store, order(&[("A", 1, 500)], &[&t3], &["ONCE"]), "k3").await,
        ),
        (
            T.to_string(),
            claimed(&f.store, order(&[("A", 1, 500)], &[&t4], &["ONCE"]), "k4").await,
        ),
    ];
    let r = f.store.place_batch(batch).await;
    assert!(r[0].is_ok());
    assert!(matches!(&r[1], Err(PlaceError::CustomerLimitReached(c)) if c == "ONCE"));
    assert_eq!(f.store.count_orders(T).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_a_halted_write_path_is_not_alive() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 1000)]).await;
    let cfg = match f.store.backend() {
        ordo_store::Backend::Sqlite => ordo_store::StorageConfig::Sqlite {
            data_dir: f._tmp.path().to_path_buf(),
        },
        ordo_store::Backend::Postgres => f.pg_url.clone().expect("postgres url"),
    };
    // One order per commit, two queued at most, and a slow first batch: the rest is refused.
    let tight = Store::open_with(
        &cfg,
        ordo_store::BatchConfig {
            max_orders: 1,
            max_wait: std::time::Duration::ZERO,
            workers: 1,
            queue_capacity: 2,
        },
    )
    .await
    .unwrap();
    assert!(tight.write_path_alive());
    let mut handles = Vec::new();
    for i in 0..60 {
        let t = f.token(&format!("tok{i}")).await;
        let nw = claimed(
            &f.store,
            order(&[("A", 1, 500)], &[&t], &[]),
            &format!("k{i}"),
        )
        .await;
        let s = tight.clone();
        handles.push(tokio::spawn(async move { s.place(T, nw).await }));
    }
    let (mut placed, mut busy) = (0, 0);
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => placed += 1,
            Err(PlaceError::Store(StoreError::Busy)) => busy += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(busy > 0, "a full queue refuses at once ({placed} placed)");
    assert_eq!(placed + busy, 60);
    assert_eq!(f.store.count_orders(T).await.unwrap(), placed as i64);
    tight.halt_write_path().await;
    assert!(!tight.write_path_alive());
    assert!(
        f.store.write_path_alive(),
        "only the halted handle's write path stopped"
    );
}

#[tokio::test]
async fn abandoned_claims_are_released_answered_keys_are_kept() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let t = f.token("tok1").await;
    f.store
        .place(
            T,
            claimed(&f.store, order(&[("A", 1, 500)], &[&t], &[]), "done").await,
        )
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .claim_checkout(T, &idem("abandoned"), 0, &[])
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
    assert_eq!(
        f.store.release_abandoned_claims(0).await.unwrap(),
        0,
        "younger than the cutoff: kept"
    );
    assert_eq!(f.store.release_abandoned_claims(i64::MAX).await.unwrap(), 1);
    assert!(
        f.store
            .idempotency_record(T, "abandoned")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.store
            .idempotency_record(T, "done")
            .await
            .unwrap()
            .unwrap()
            .status,
        201,
        "an answer is never released"
    );
}

#[tokio::test]
async fn an_order_whose_authorization_was_voided_is_not_placed() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 5)]).await;
    let t = f.token("tok1").await;
    let auth = PendingAuthorization {
        id: "pa_lost".into(),
        token: t.clone(),
        amount: usd(500),
    };
    let claim_id = match f
        .store
        .claim_checkout(T, &idem("k"), 0, &[auth])
        .await
        .unwrap()
    {
        Claim::Claimed { claim_id } => claim_id,
        other => panic!("{other:?}"),
    };
    // Recovery claimed it for voiding while the order waited.
    assert_eq!(
        f.store
            .claim_for_void(T, &["pa_lost".into()])
            .await
            .unwrap()
            .len(),
        1
    );
    let mut nw = NewOrder {
        order: order(&[("A", 1, 500)], &[&t], &[]),
        customer_key: "g".into(),
        idempotency_key: "k".into(),
        claim_id,
        authorization_ids: vec![],
    };
    nw.authorization_ids = vec!["pa_lost".into()];
    assert!(matches!(
        f.store.place(T, nw).await,
        Err(PlaceError::AuthorizationLost)
    ));
    assert_eq!(f.store.count_orders(T).await.unwrap(), 0);
    assert_eq!(reserved(&f, "A").await, 0);
}

#[tokio::test]
async fn a_placement_stores_its_gateway_ids_even_when_it_fails() {
    let f = fixture().await;
    f.product("A", 500, &[("a", 1)]).await;
    let t = f.token("tok1").await;
    let auth = PendingAuthorization {
        id: "pa_gw".into(),
        token: t.clone(),
        amount: usd(1000),
    };
    let claim_id = match f
        .store
        .claim_checkout(T, &idem("k"), 0, &[auth])
        .await
        .unwrap()
    {
        Claim::Claimed { claim_id } => claim_id,
        other => panic!("{other:?}"),
    };
    // Two units asked, one in stock: the order fails, its authorization stays pending for the
    // caller (or recovery) to void — by the gateway's id ("auth_x"), stored by the driver.
    let nw = NewOrder {
        order: order(&[("A", 2, 500)], &[&t], &[]),
        customer_key: "g".into(),
        idempotency_key: "k".into(),
        claim_id,
        authorization_ids: vec!["pa_gw".into()],
    };
    assert!(matches!(
        f.store.place(T, nw).await,
        Err(PlaceError::Shortage(_))
    ));
    let stale = f.store.stale_authorizations(i64::MAX).await.unwrap();
    let gw = stale
        .iter()
        .find(|s| s.id == "pa_gw")
        .and_then(|s| s.gateway_authorization.clone());
    assert_eq!(gw.as_deref(), Some("auth_x"));
}

/// PostgreSQL row-level security: the application's sessions run as a role the policies bind;
/// a query with no tenant filter sees nothing without a scope and only its tenant's rows with
/// one; another tenant's rows can be neither read nor written; every tenant table is covered.
#[tokio::test]
async fn postgres_row_level_security_confines_every_query_to_its_tenant() {
    let f = fixture().await;
    f.product("RLS-A1", 100, &[]).await;
    f.product("RLS-A2", 100, &[]).await;
    let other = ProductUpsert {
        sku: sku("RLS-B1"),
        name: "b".into(),
        price: usd(100),
        category: None,
        attributes: Default::default(),
        fulfilment: Default::default(),
    };
    f.store.upsert_product("t2", &other, None).await.unwrap();
    let Some(r) = ordo_store::testing::row_security_report(&f.store, T, "t2")
        .await
        .unwrap()
    else {
        eprintln!("row-level security is PostgreSQL's; SQLite has nothing to check");
        return;
    };
    assert_eq!(
        r.session_role, "ordo_app",
        "sessions act as the role row-level security binds"
    );
    assert_eq!(r.unscoped, 0, "no scope, no rows");
    assert_eq!(r.a_truth, 2);
    assert_eq!(
        r.scoped_to_a, r.a_truth,
        "a scope sees exactly its tenant's rows, with no tenant filter in the query"
    );
    assert_eq!(
        r.b_seen_from_a, 0,
        "another tenant's rows are invisible even when asked for by name"
    );
    assert!(
        r.cross_write_refused,
        "a row of another tenant cannot be written"
    );
    assert!(
        r.unprotected_tables.is_empty(),
        "tables without forced row-level security: {:?}",
        r.unprotected_tables
    );
}

/// One step of a random stock history.
#[derive(Debug, Clone)]
enum StockOp {
    Receive(usize, i64),
    Count(usize, i64),
    Safety(usize, i64),
    Order(i64),
    /// Cart `k` holds `q` units (replacing its hold).
    Hold(usize, i64),
    /// Every hold expires and is swept.
    Sweep,
}

fn stock_op() -> impl proptest::strategy::Strategy<Value = StockOp> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..2, 1i64..8).prop_map(|(l, n)| StockOp::Receive(l, n)),
        (0usize..2, 0i64..10).prop_map(|(l, n)| StockOp::Count(l, n)),
        (0usize..2, 0i64..6).prop_map(|(l, n)| StockOp::Safety(l, n)),
        (1i64..6).prop_map(StockOp::Order),
        (0usize..2, 1i64..5).prop_map(|(k, q)| StockOp::Hold(k, q)),
        Just(StockOp::Sweep),
    ]
}

/// Runs `ops` against a fresh store and checks after every step: each unit is available,
/// reserved or held back (`on_hand = available + reserved + safety_held`), reservations match the
/// orders' allocations, an order is placed exactly when the network's available units cover it,
/// a count below the reservations is refused; at the end, replaying the change feed gives every
/// row as it stands.
async fn run_stock_history(ops: Vec<StockOp>) {
    let f = fixture().await;
    let locs = ["a", "b"];
    f.product("INV", 100, &[]).await;
    for (i, op) in ops.iter().enumerate() {
        let before = f.store.stock_levels(T, &sku("INV")).await.unwrap();
        let at = |l: usize| {
            before
                .iter()
                .find(|s| s.location_id.as_str() == locs[l])
                .cloned()
        };
        let total_available: i64 = before.iter().map(|l| l.available()).sum();
        let adjust = |l: usize, change: StockChange, reason: &str| Adjustment {
            sku: sku("INV"),
            location_id: loc(locs[l]),
            change,
            reason: reason.into(),
            note: None,
        };
        match op {
            StockOp::Receive(l, n) => {
                f.store
                    .adjust_stock(T, &adjust(*l, StockChange::Delta(*n), "receipt"), None)
                    .await
                    .unwrap();
            }
            StockOp::Count(l, n) => {
                let reserved = at(*l).map_or(0, |s| s.reserved + s.held);
                let r = f
                    .store
                    .adjust_stock(T, &adjust(*l, StockChange::SetOnHand(*n), "count"), None)
                    .await;
                assert_eq!(
                    r.is_ok(),
                    *n >= reserved,
                    "step {i} {op:?}: a count below the {reserved} reserved is refused, others apply ({r:?})"
                );
            }
            StockOp::Safety(l, n) => {
                f.store
                    .adjust_stock(
                        T,
                        &adjust(*l, StockChange::SafetyStock(*n), "safety_stock"),
                        None,
                    )
                    .await
                    .unwrap();
            }
            StockOp::Hold(k, q) => {
                let cart = format!("cart_hold{k}");
                // Free for this cart, row by row: what anyone may take plus what it holds there
                // (a safety stock raised since the hold can leave a row below zero before that).
                let held_here = f.store.cart_hold(T, &cart).await.unwrap();
                let own_at = |loc: &str| {
                    held_here
                        .iter()
                        .filter(|(h, _)| h.location_id == loc)
                        .map(|(h, _)| h.quantity)
                        .sum::<i64>()
                };
                let free_for_cart: i64 = before
                    .iter()
                    .map(|l| {
                        (l.on_hand - l.reserved - l.held - l.safety_stock
                            + own_at(l.location_id.as_str()))
                        .max(0)
                    })
                    .sum();
                let shipments = order(&[("INV", *q, 100)], &[], &[]).shipments;
                let r = f
                    .store
                    .hold_cart(
                        T,
                        &cart,
                        shipments,
                        usd(0).currency,
                        ordo_store::now_ms() + 3_600_000,
                    )
                    .await
                    .unwrap();
                let held = matches!(r, ordo_store::HoldOutcome::Held { .. });
                assert_eq!(
                    held,
                    *q <= free_for_cart,
                    "step {i} {op:?}: {free_for_cart} free for this cart ({r:?})"
                );
            }
            StockOp::Sweep => {
                f.store
                    .release_expired_holds(ordo_store::now_ms() + 7_200_000, 1000)
                    .await
                    .unwrap();
                let left: i64 = f
                    .store
                    .stock_levels(T, &sku("INV"))
                    .await
                    .unwrap()
                    .iter()
                    .map(|l| l.held)
                    .sum();
                assert_eq!(left, 0, "step {i}: every hold swept");
            }
            StockOp::Order(q) => {
                let t = f.token(&format!("tok-{i}")).await;
                let r = f
                    .store
                    .place(
                        T,
                        claimed(
                            &f.store,
                            order(&[("INV", *q, 100)], &[&t], &[]),
                            &format!("k-{i}"),
                        )
                        .await,
                    )
                    .await;
                assert_eq!(
                    r.is_ok(),
                    *q <= total_available,
                    "step {i} {op:?}: {total_available} available ({r:?})"
                );
            }
        }
        for l in f.store.stock_levels(T, &sku("INV")).await.unwrap() {
            assert!(
                l.reserved >= 0 && l.reserved <= l.on_hand && l.safety_stock >= 0,
                "step {i} {op:?}: {l:?}"
            );
            assert!(
                l.held >= 0 && l.reserved + l.held <= l.on_hand,
                "step {i} {op:?}: {l:?}"
            );
            assert_eq!(
                l.on_hand,
                l.available() + l.reserved + l.held + l.safety_held(),
                "step {i} {op:?}: {l:?}"
            );
        }
        let mut held_rows = 0;
        for k in 0..2 {
            held_rows += f
                .store
                .cart_hold(T, &format!("cart_hold{k}"))
                .await
                .unwrap()
                .iter()
                .map(|(h, _)| h.quantity)
                .sum::<i64>();
        }
        let held: i64 = f
            .store
            .stock_levels(T, &sku("INV"))
            .await
            .unwrap()
            .iter()
            .map(|l| l.held)
            .sum();
        assert_eq!(
            held, held_rows,
            "step {i} {op:?}: held equals the carts' holds"
        );
        let (_, reserved, allocated) = f.store.stock_reconciliation(T, &sku("INV")).await.unwrap();
        assert_eq!(reserved, allocated, "step {i} {op:?}");
    }
    let mut replayed: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    let mut after = 0;
    loop {
        let page = f.store.inventory_changes(T, after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(
            page.windows(2).all(|w| w[1].seq == w[0].seq + 1) && last.seq > after,
            "the feed is numbered without gaps"
        );
        after = last.seq;
        for e in page {
            replayed.insert(
                e.change.location_id.clone(),
                (
                    e.change.on_hand,
                    e.change.reserved + 1000 * e.change.held,
                    e.change.safety_stock,
                ),
            );
        }
    }
    let now: std::collections::BTreeMap<String, (i64, i64, i64)> = f
        .store
        .stock_levels(T, &sku("INV"))
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            (
                l.location_id.to_string(),
                (l.on_hand, l.reserved + 1000 * l.held, l.safety_stock),
            )
        })
        .collect();
    assert_eq!(
        replayed, now,
        "replaying the change feed gives the stock as it stands"
    );
}

#[test]
fn stock_invariants_hold_over_random_operation_sequences() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Each case opens a fresh store (a fresh database on PostgreSQL): a few cases of many steps.
    let mut runner = TestRunner::new(Config {
        cases: 6,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(stock_op(), 10..40), |ops| {
            rt.block_on(run_stock_history(ops));
            Ok(())
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum LifeOp {
    Pick(usize),
    /// Pick fulfilment `i` finding `k` units fewer of its first line.
    ShortPick(usize, i64),
    Pack(usize),
    /// Ship fulfilment `i`; the gateway answers yes (`true`) or declines.
    Ship(usize, bool),
    Deliver(usize),
    /// Cancel everything left (by the customer or staff).
    CancelAll(usize, bool),
    /// Staff cancel `q` units of line `l` of order `o`.
    CancelUnits(usize, usize, i64),
    /// Ask back `q` units of line `l` of order `o`.
    Return(usize, usize, i64),
    /// Receive `q` units of return `r`'s first line.
    Receive(usize, i64),
    /// Disposition `q` units of return `r`'s first line (restock when true, else write off).
    Dispose(usize, i64, bool),
}

fn life_op() -> impl proptest::strategy::Strategy<Value = LifeOp> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..6).prop_map(LifeOp::Pick),
        (0usize..6, 1i64..3).prop_map(|(i, k)| LifeOp::ShortPick(i, k)),
        (0usize..6).prop_map(LifeOp::Pack),
        (0usize..6, proptest::bool::weighted(0.8)).prop_map(|(i, ok)| LifeOp::Ship(i, ok)),
        (0usize..6).prop_map(LifeOp::Deliver),
        (0usize..3, any::<bool>()).prop_map(|(o, staff)| LifeOp::CancelAll(o, staff)),
        (0usize..3, 0usize..2, 1i64..3).prop_map(|(o, l, q)| LifeOp::CancelUnits(o, l, q)),
        (0usize..3, 0usize..2, 1i64..3).prop_map(|(o, l, q)| LifeOp::Return(o, l, q)),
        (0usize..4, 1i64..3).prop_map(|(r, q)| LifeOp::Receive(r, q)),
        (0usize..4, 1i64..3, any::<bool>()).prop_map(|(r, q, s)| LifeOp::Dispose(r, q, s)),
    ]
}

/// Places three two-tender orders of two SKUs over two nodes, runs `ops`, and checks after every
/// step: per tender captured + voided ≤ authorized and refunded ≤ captured; per order, captures
/// plus voids are exactly the value of the units decided (shipped or cancelled) — the total once
/// all are — and refunds never exceed the value of the units returned; the order's status is the
/// one its fulfilments give; fulfilments carry every unit not cancelled; per SKU, reserved equals
/// the allocations and on-hand moved only by shipments and restocks.
async fn run_lifecycle_history(ops: Vec<LifeOp>) {
    use ordo_domain::lifecycle::{self as lc, Canceller, FulfillmentCommand as C};
    let f = fixture().await;
    f.product("L1", 700, &[("a", 6), ("b", 4)]).await;
    f.product("L2", 1100, &[("a", 3), ("b", 8)]).await;
    let initial: i64 = 21;
    let actor = ordo_store::Actor::system();
    let mut orders = Vec::new();
    for (i, (q1, q2)) in [(2, 1), (3, 2), (1, 3)].into_iter().enumerate() {
        let (t0, t1) = (
            f.token(&format!("lt{i}a")).await,
            f.token(&format!("lt{i}b")).await,
        );
        let mut o = order(&[("L1", q1, 700), ("L2", q2, 1100)], &[&t0, &t1], &[]);
        let total = o.totals.total.amount;
        o.payments[0].amount = usd(total / 3);
        o.payments[1].amount = usd(total - total / 3);
        for p in o.payments.iter_mut() {
            p.authorized = Some(p.amount);
        }
        let placed = f
            .store
            .place(T, claimed(&f.store, o, &format!("life{i}")).await)
            .await
            .unwrap();
        orders.push(placed);
    }
    let fuls: Vec<(usize, String)> = orders
        .iter()
        .enumerate()
        .flat_map(|(i, o)| o.fulfillments.iter().map(move |x| (i, x.id.clone())))
        .collect();
    let mut returns: Vec<String> = Vec::new();
    // Units short picks found missing (taken off on-hand as `short_pick`).
    let mut written_down = 0i64;
    for op in ops {
        match op.clone() {
            LifeOp::Pick(i) | LifeOp::Pack(i) | LifeOp::Deliver(i) => {
                let Some((_, id)) = fuls.get(i % fuls.len()) else {
                    continue;
                };
                let c = match op {
                    LifeOp::Pick(_) => C::Pick,
                    LifeOp::Pack(_) => C::Pack,
                    _ => C::Deliver,
                };
                f.store
                    .step_fulfillment(T, id, c, &actor)
                    .await
                    .unwrap()
                    .ok();
            }
            LifeOp::ShortPick(i, k) => {
                let (o, id) = &fuls[i % fuls.len()];
                let now = f
                    .store
                    .order(T, &orders[*o].id.to_string())
                    .await
                    .unwrap()
                    .unwrap();
                if let Some(x) = now.fulfillments.iter().find(|x| &x.id == id) {
                    if let Some(l) = x.lines.first() {
                        let found = (l.quantity - k).max(0);
                        if let Ok(p) = f
                            .store
                            .pick_fulfillment(T, id, &[(l.sku.clone(), found)], &actor)
                            .await
                            .unwrap()
                        {
                            written_down += p.shorts.iter().map(|s| s.missing).sum::<i64>();
                        }
                    }
                }
            }
            LifeOp::Ship(i, ok) => {
                let (_, id) = &fuls[i % fuls.len()];
                if let Ok(claim) = f.store.claim_ship(T, id, "UPS", "1").await.unwrap() {
                    let outcomes: Vec<(String, ordo_store::OpOutcome)> = claim
                        .captures
                        .iter()
                        .map(|c| {
                            let o = if ok {
                                ordo_store::OpOutcome::Succeeded {
                                    gateway_ref: format!("cap_{}", c.id),
                                }
                            } else {
                                ordo_store::OpOutcome::Failed {
                                    reason: "declined".into(),
                                }
                            };
                            (c.id.clone(), o)
                        })
                        .collect();
                    f.store
                        .finish_ship(T, id, &outcomes, &actor)
                        .await
                        .unwrap()
                        .unwrap();
                }
            }
            LifeOp::CancelAll(o, staff) => {
                let who = if staff {
                    Canceller::Staff
                } else {
                    Canceller::Customer
                };
                let id = orders[o].id.to_string();
                f.store
                    .cancel_units(T, &id, who, &[], "test", &actor)
                    .await
                    .unwrap()
                    .ok();
            }
            LifeOp::CancelUnits(o, l, q) => {
                let id = orders[o].id.to_string();
                let s = orders[o].lines[l].sku.clone();
                f.store
                    .cancel_units(T, &id, Canceller::Staff, &[(s, q)], "test", &actor)
                    .await
                    .unwrap()
                    .ok();
            }
            LifeOp::Return(o, l, q) => {
                let id = orders[o].id.to_string();
                let s = orders[o].lines[l].sku.to_string();
                if let Idempotent::Done(Ok(r)) = f
                    .store
                    .request_return(T, &id, &[(s, q, "other".into())], 86_400_000, &actor, None)
                    .await
                    .unwrap()
                {
                    returns.push(r.id);
                }
            }
            LifeOp::Receive(r, q) => {
                let Some(id) = returns.get(r % returns.len().max(1)) else {
                    continue;
                };
                let ret = f.store.return_by_id(T, id).await.unwrap().unwrap();
                let s = ret.lines[0].sku.clone();
                f.store
                    .receive_return(T, id, "a", &[(s, q, "new".into())], &actor)
                    .await
                    .unwrap()
                    .ok();
            }
            LifeOp::Dispose(r, q, restock) => {
                let Some(id) = returns.get(r % returns.len().max(1)) else {
                    continue;
                };
                let ret = f.store.return_by_id(T, id).await.unwrap().unwrap();
                let s = ret.lines[0].sku.clone();
                let d = if restock {
                    ordo_store::Disposition::Restock
                } else {
                    ordo_store::Disposition::WriteOff
                };
                f.store
                    .disposition_return(T, id, &[(s, q, d)], &actor)
                    .await
                    .unwrap()
                    .ok();
            }
        }
        // The invariants, after every step.
        let mut shipped_per_sku = std::collections::HashMap::<String, i64>::new();
        for placed in &orders {
            let o = f
                .store
                .order(T, &placed.id.to_string())
                .await
                .unwrap()
                .unwrap();
            let m = |x: &Option<Money>| x.map_or(0, |m| m.amount);
            let (mut captured, mut refunded) = (0, 0);
            for p in &o.payments {
                let (a, c, r) = (m(&p.authorized), m(&p.captured), m(&p.refunded));
                assert!(c <= a && r <= c, "tender {p:?} after {op:?}");
                captured += c;
                refunded += r;
            }
            let ops = f
                .store
                .payment_operations(T, &o.id.to_string())
                .await
                .unwrap();
            let voided: i64 = ops.iter().filter(|x| x.1 == "void").map(|x| x.3).sum();
            let weights: Vec<i64> = o.lines.iter().map(|l| l.line_total.amount).collect();
            let qty: Vec<i64> = o.lines.iter().map(|l| l.quantity).collect();
            let shares = lc::line_shares(&weights, &qty, o.totals.total.amount);
            let decided: i64 = o
                .lines
                .iter()
                .zip(&shares)
                .map(|(l, s)| lc::chunk_value(*s, l.quantity, 0, l.shipped + l.cancelled))
                .sum();
            let returned: i64 = o
                .lines
                .iter()
                .zip(&shares)
                .map(|(l, s)| lc::chunk_value(*s, l.quantity, 0, l.returned))
                .sum();
            assert_eq!(
                captured + voided,
                decided,
                "money of decided units, order {} after {op:?}: {o:?}",
                o.number.as_str()
            );
            if o.lines
                .iter()
                .all(|l| l.shipped + l.cancelled == l.quantity)
            {
                assert_eq!(captured + voided, o.totals.total.amount);
            }
            assert!(
                refunded <= returned.min(captured),
                "refunds {refunded} vs returned value {returned}"
            );
            let statuses: Vec<_> = o.fulfillments.iter().map(|x| x.status).collect();
            let shipped: i64 = o.lines.iter().map(|l| l.shipped).sum();
            let back: i64 = o.lines.iter().map(|l| l.returned).sum();
            assert_eq!(
                o.status,
                lc::order_status(&statuses, shipped, back),
                "after {op:?}"
            );
            for l in &o.lines {
                let carried: i64 = o
                    .fulfillments
                    .iter()
                    .flat_map(|x| &x.lines)
                    .filter(|x| x.sku == l.sku)
                    .map(|x| x.quantity)
                    .sum();
                assert_eq!(carried, l.quantity - l.cancelled, "line {l:?} after {op:?}");
                *shipped_per_sku.entry(l.sku.to_string()).or_default() += l.shipped;
            }
        }
        let mut restocked = std::collections::HashMap::<String, i64>::new();
        for id in &returns {
            for l in f.store.return_by_id(T, id).await.unwrap().unwrap().lines {
                *restocked.entry(l.sku.clone()).or_default() += l.restocked;
            }
        }
        let mut on_hand_total = 0;
        for s in ["L1", "L2"] {
            let (on_hand, reserved, allocated) =
                f.store.stock_reconciliation(T, &sku(s)).await.unwrap();
            assert_eq!(reserved, allocated, "{s} after {op:?}");
            on_hand_total += on_hand + shipped_per_sku.get(s).copied().unwrap_or(0)
                - restocked.get(s).copied().unwrap_or(0);
        }
        assert_eq!(
            on_hand_total + written_down,
            initial,
            "on-hand moves only by shipments, restocks and short picks, after {op:?}"
        );
    }
}

#[test]
fn lifecycle_invariants_hold_over_random_command_sequences() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 8,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(life_op(), 20..60), |ops| {
            rt.block_on(run_lifecycle_history(ops));
            Ok(())
        })
        .unwrap();
}
