//! Catalog storage: products, locations, customers and promotions, plus the live catalog view
//! (price and network-wide availability) that pricing reads.

use crate::audit::AuditEntry;
use crate::idempotency::{IdempotencyKey, Idempotent, Render};
use crate::sql::{Row, Sql, Val};
use crate::{Result, Store, corrupt, now_ms, placeholders};
use ordo_domain::pricing::CatalogEntry;
use ordo_domain::promotion::Promotion;
use ordo_domain::{
    Capability, CountryCode, Currency, Cutoff, Location, LocationId, LocationKind, Money, Product,
    Sku,
};
use std::collections::HashMap;

/// A product as the catalog API shows it: the product plus units available across the network.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductView {
    pub product: Product,
    pub available: i64,
}

/// Staff's create-or-update of one product.
#[derive(Debug, Clone)]
pub struct ProductUpsert {
    pub sku: Sku,
    pub name: String,
    pub price: Money,
    pub category: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub fulfilment: ordo_domain::Fulfilment,
}

const PRODUCT_COLUMNS: &str = "p.sku, p.name, p.category, p.attributes, p.price_amount, p.currency, p.updated_at_ms, \
     (SELECT CAST(COALESCE(SUM(CASE WHEN s.on_hand - s.reserved - s.held - s.safety_stock > 0 THEN s.on_hand - s.reserved - s.held - s.safety_stock ELSE 0 END), 0) AS BIGINT) FROM stock s WHERE s.tenant_id = p.tenant_id AND s.sku = p.sku) AS available, \
     p.hazmat, p.cold_chain, p.weight_grams";

/// Decodes a row of `PRODUCT_COLUMNS`.
fn product_view(r: &Row) -> Result<ProductView> {
    let sku = r[0].text()?;
    let product = Product {
        sku: Sku::parse(&sku).map_err(|_| corrupt(format!("sku {sku}")))?,
        name: r[1].text()?,
        price: Money::new(
            r[4].int()?,
            Currency::parse(&r[5].text()?).map_err(|_| corrupt("currency"))?,
        ),
        category: r[2].opt_text()?,
        attributes: serde_json::from_str(&r[3].text()?).map_err(corrupt)?,
        fulfilment: ordo_domain::Fulfilment {
            hazmat: r[8].int()? != 0,
            cold_chain: r[9].int()? != 0,
            weight_grams: r[10].opt_int()?.map(|g| g.clamp(0, u32::MAX as i64) as u32),
        },
        updated_at_ms: r[6].int()?,
    };
    Ok(ProductView {
        product,
        available: r[7].int()?.max(0),
    })
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(q: &str) -> String {
    let mut s = String::with_capacity(q.len() + 2);
    s.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

impl Store {
    /// Creates or updates a product (idempotently, when given a key and how to render the
    /// answer); returns it with whether it was new.
    pub async fn upsert_product(
        &self,
        tenant: &str,
        p: &ProductUpsert,
        key: Option<(IdempotencyKey, Render<(ProductView, bool)>)>,
    ) -> Result<Idempotent<(ProductView, bool)>> {
        self.upsert_product_audited(tenant, p, key, None).await
    }

    /// `upsert_product`, with an audit entry (the product before and after) in the same transaction.
    pub async fn upsert_product_audited(
        &self,
        tenant: &str,
        p: &ProductUpsert,
        key: Option<(IdempotencyKey, Render<(ProductView, bool)>)>,
        audit: Option<AuditEntry>,
    ) -> Result<Idempotent<(ProductView, bool)>> {
        let (t, p) = (tenant.to_string(), p.clone());
        self.idempotent(tenant, key, move |tx| {
            let (t, p, audit) = (t.clone(), p.clone(), audit.clone());
            Box::pin(async move {
                let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.sku = $2");
                let before = tx.rows(&sql, vec![t.as_str().into(), p.sku.as_str().into()]).await?.first().map(product_view).transpose()?;
                let existed = before.is_some();
                let attributes = serde_json::Value::Object(p.attributes.clone()).to_string();
                tx.exec(
                    "INSERT INTO products (tenant_id, sku, name, name_lc, category, attributes, price_amount, currency, updated_at_ms, \
                     hazmat, cold_chain, weight_grams) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name, name_lc = excluded.name_lc, \
                     category = excluded.category, attributes = excluded.attributes, price_amount = excluded.price_amount, \
                     currency = excluded.currency, updated_at_ms = excluded.updated_at_ms, hazmat = excluded.hazmat, \
                     cold_chain = excluded.cold_chain, weight_grams = excluded.weight_grams",
                    vec![
                        t.as_str().into(),
                        p.sku.as_str().into(),
                        p.name.as_str().into(),
                        p.name.to_lowercase().into(),
                        p.category.as_deref().into(),
                        attributes.into(),
                        p.price.amount.into(),
                        p.price.currency.code().into(),
                        now_ms().into(),
                        i64::from(p.fulfilment.hazmat).into(),
                        i64::from(p.fulfilment.cold_chain).into(),
                        p.fulfilment.weight_grams.map(i64::from).into(),
                    ],
                )
                .await?;
                let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.sku = $2");
                let rows = tx.rows(&sql, vec![t.as_str().into(), p.sku.as_str().into()]).await?;
                let view = rows.first().map(product_view).transpose()?.ok_or_else(|| corrupt("product vanished after upsert"))?;
                if let Some(who) = &audit {
                    let action = if existed { "product.updated" } else { "product.created" };
                    let state = |v: &ProductView| serde_json::json!({"name": v.product.name, "price": v.product.price.amount, "currency": v.product.price.currency.code(), "category": v.product.category, "fulfilment": v.product.fulfilment}).to_string();
                    crate::audit::append(tx, &t, who, action, &format!("product:{}", p.sku), before.as_ref().map(state), Some(state(&view))).await?;
                }
                Ok(((view, !existed), true))
            })
        })
        .await
    }

    pub async fn product(&self, tenant: &str, sku: &Sku) -> Result<Option<ProductView>> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.sku = $2"
        );
        let rows = self
            .read_rows(tenant, &sql, vec![tenant.into(), sku.as_str().into()])
            .await?;
        rows.first().map(product_view).transpose()
    }

    /// One page of products in SKU order, after `after_sku`, optionally filtered by a
    /// case-insensitive substring of name, SKU or category.
    pub async fn list_products(
        &self,
        tenant: &str,
        q: Option<&str>,
        after_sku: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProductView>> {
        let mut sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.sku > $2"
        );
        if q.is_some() {
            sql.push_str(
                " AND (p.name_lc LIKE $4 ESCAPE '\\' OR LOWER(p.sku) LIKE $4 ESCAPE '\\' OR LOWER(COALESCE(p.category, '')) LIKE $4 ESCAPE '\\')",
            );
        }
        sql.push_str(" ORDER BY p.sku LIMIT $3");
        let mut args: Vec<Val> = vec![tenant.into(), after_sku.unwrap_or("").into(), limit.into()];
        if let Some(q) = q {
            args.push(like_pattern(q).into());
        }
        self.read_rows(tenant, &sql, args)
            .await?
            .iter()
            .map(product_view)
            .collect()
    }

    /// Price, name and availability of the given SKUs (unknown SKUs are simply absent).
    /// With `for_cart`, that cart's own checkout hold counts as available (row by row).
    pub async fn catalog_entries(
        &self,
        tenant: &str,
        skus: &[&Sku],
        for_cart: Option<&str>,
    ) -> Result<HashMap<Sku, CatalogEntry>> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let mut args: Vec<Val> = vec![tenant.into()];
        args.extend(skus.iter().map(|s| Val::from(s.as_str())));
        let sql = match for_cart {
            None => format!(
                "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.tenant_id = $1 AND p.sku IN ({})",
                placeholders(2, skus.len())
            ),
            Some(cart) => {
                args.push(cart.into());
                let own = format!(
                    "p.sku, p.name, p.category, p.attributes, p.price_amount, p.currency, p.updated_at_ms, \
                     (SELECT CAST(COALESCE(SUM(CASE WHEN x.v > 0 THEN x.v ELSE 0 END), 0) AS BIGINT) FROM \
                       (SELECT s.on_hand - s.reserved - s.held - s.safety_stock + COALESCE((SELECT h.quantity FROM stock_holds h \
                          WHERE h.tenant_id = s.tenant_id AND h.cart_id = ${} AND h.sku = s.sku AND h.location_id = s.location_id), 0) AS v \
                        FROM stock s WHERE s.tenant_id = p.tenant_id AND s.sku = p.sku) x) AS available, \
                     p.hazmat, p.cold_chain, p.weight_grams",
                    skus.len() + 2
                );
                format!(
                    "SELECT {own} FROM products p WHERE p.tenant_id = $1 AND p.sku IN ({})",
                    placeholders(2, skus.len())
                )
            }
        };
        let rows = self.read_rows(tenant, &sql, args).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let v = product_view(row)?;
            out.insert(
                v.product.sku.clone(),
                CatalogEntry {
                    name: v.product.name,
                    price: v.product.price,
                    available: v.available,
                },
            );
        }
        Ok(out)
    }

    pub async fn count_products(&self, tenant: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *self.conn(tenant).await?)
                .await?,
        )
    }

    /// Creates or replaces a location (every field).
    pub async fn upsert_location(&self, tenant: &str, l: &Location) -> Result<()> {
        self.write_rows(tenant, UPSERT_LOCATION, location_args(tenant, l))
            .await?;
        Ok(())
    }

    /// Creates or replaces a location in one commit with its audit entry; whether it was created.
    pub async fn upsert_location_audited(
        &self,
        tenant: &str,
        l: &Location,
        audit: Option<AuditEntry>,
    ) -> Result<bool> {
        let (t, l) = (tenant.to_string(), l.clone());
        let (created, _) = self
            .unit(tenant, move |tx| {
                let (t, l, audit) = (t.clone(), l.clone(), audit.clone());
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {LOCATION_COLUMNS} FROM locations WHERE tenant_id = $1 AND id = $2"
                    );
                    let before = tx
                        .rows(&sql, vec![t.as_str().into(), l.id.as_str().into()])
                        .await?
                        .first()
                        .map(location_row)
                        .transpose()?;
                    tx.exec(UPSERT_LOCATION, location_args(&t, &l)).await?;
                    if let Some(who) = &audit {
                        let state = |v: &Location| serde_json::to_string(v).unwrap_or_default();
                        let action = if before.is_some() {
                            "location.updated"
                        } else {
                            "location.created"
                        };
                        crate::audit::append(
                            tx,
                            &t,
                            who,
                            action,
                            &format!("location:{}", l.id),
                            before.as_ref().map(state),
                            Some(state(&l)),
                        )
                        .await?;
                    }
                    Ok((before.is_none(), true))
                })
            })
            .await?;
        Ok(created)
    }

    /// Every location of the tenant, by id.
    pub async fn locations(&self, tenant: &str) -> Result<Vec<Location>> {
        let sql =
            format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE tenant_id = $1 ORDER BY id");
        self.read_rows(tenant, &sql, vec![tenant.into()])
            .await?
            .iter()
            .map(location_row)
            .collect()
    }

    pub async fn location(&self, tenant: &str, id: &LocationId) -> Result<Option<Location>> {
        let sql =
            format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE tenant_id = $1 AND id = $2");
        self.read_rows(tenant, &sql, vec![tenant.into(), id.as_str().into()])
            .await?
            .first()
            .map(location_row)
            .transpose()
    }

    pub async fn upsert_customer(
        &self,
        tenant: &str,
        id: &str,
        email: &str,
        name: &str,
        phone: Option<&str>,
    ) -> Result<()> {
        self.write_rows(tenant,
            "INSERT INTO customers (tenant_id, id, email, name, phone) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET email = excluded.email, name = excluded.name, phone = excluded.phone",
            vec![tenant.into(), id.into(), email.into(), name.into(), phone.into()],
        )
        .await?;
        Ok(())
    }

    /// A member's (email, name), if the id is known.
    pub async fn customer(&self, tenant: &str, id: &str) -> Result<Option<(String, String)>> {
        let rows = self
            .read_rows(
                tenant,
                "SELECT email, name FROM customers WHERE tenant_id = $1 AND id = $2",
                vec![tenant.into(), id.into()],
            )
            .await?;
        rows.first()
            .map(|r| Ok((r[0].text()?, r[1].text()?)))
            .transpose()
    }

    /// Creates or replaces a promotion's definition (its usage count is kept).
    pub async fn upsert_promotion(&self, tenant: &str, p: &Promotion) -> Result<()> {
        let body = serde_json::to_string(p).map_err(corrupt)?;
        self.write_rows(tenant,
            "INSERT INTO promotions (tenant_id, code, body, usage_limit, times_used) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (tenant_id, code) DO UPDATE SET body = excluded.body, usage_limit = excluded.usage_limit",
            vec![tenant.into(), p.code.as_str().into(), body.into(), p.usage_limit.into()],
        )
        .await?;
        Ok(())
    }

    /// The promotions behind these (normalized) codes, with current usage counts.
    pub async fn promotions(
        &self,
        tenant: &str,
        codes: &[String],
    ) -> Result<HashMap<String, Promotion>> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT code, body, times_used FROM promotions WHERE tenant_id = $1 AND code IN ({})",
            placeholders(2, codes.len())
        );
        let mut args: Vec<Val> = vec![tenant.into()];
        args.extend(codes.iter().map(Val::from));
        let mut out = HashMap::new();
        for r in self.read_rows(tenant, &sql, args).await? {
            let mut p: Promotion = serde_json::from_str(&r[1].text()?).map_err(corrupt)?;
            p.times_used = r[2].int()?;
            out.insert(r[0].text()?, p);
        }
        Ok(out)
    }

    /// How often `customer_key` has redeemed each of these codes.
    pub async fn customer_redemptions(
        &self,
        tenant: &str,
        customer_key: &str,
        codes: &[String],
    ) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for c in codes {
            let rows = self
                .read_rows(tenant,
                    "SELECT COUNT(*) FROM promotion_redemptions WHERE tenant_id = $1 AND code = $2 AND customer_key = $3",
                    vec![tenant.into(), c.into(), customer_key.into()],
                )
                .await?;
            let n = rows.first().map(|r| r[0].int()).transpose()?.unwrap_or(0);
            out.insert(c.clone(), n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_Off"), "%50\\%\\_off%");
    }
}

pub(crate) const LOCATION_COLUMNS: &str = "id, name, kind, lat, lon, country, ships_to, capabilities, daily_capacity, cutoff, timezone, \
     handling_cost, cost_per_100km, cost_currency, active";

const UPSERT_LOCATION: &str = "INSERT INTO locations (tenant_id, id, name, kind, lat, lon, country, ships_to, capabilities, daily_capacity, \
     cutoff, timezone, handling_cost, cost_per_100km, cost_currency, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, kind = excluded.kind, lat = excluded.lat, lon = excluded.lon, \
     country = excluded.country, ships_to = excluded.ships_to, capabilities = excluded.capabilities, daily_capacity = excluded.daily_capacity, \
     cutoff = excluded.cutoff, timezone = excluded.timezone, handling_cost = excluded.handling_cost, cost_per_100km = excluded.cost_per_100km, \
     cost_currency = excluded.cost_currency, active = excluded.active";

fn location_args(tenant: &str, l: &Location) -> Vec<Val> {
    let json = |v: Vec<&str>| serde_json::to_string(&v).unwrap_or_else(|_| "[]".into());
    vec![
        tenant.into(),
        l.id.as_str().into(),
        l.name.as_str().into(),
        l.kind.as_str().into(),
        l.lat.into(),
        l.lon.into(),
        l.country.as_ref().map(|c| c.as_str().to_string()).into(),
        json(l.ships_to.iter().map(|c| c.as_str()).collect()).into(),
        json(l.capabilities.iter().map(|c| c.as_str()).collect()).into(),
        l.daily_capacity.map(i64::from).into(),
        l.cutoff.map(|c| c.to_string()).into(),
        l.timezone.clone().into(),
        l.handling_cost.amount.into(),
        l.cost_per_100km.amount.into(),
        l.handling_cost.currency.code().to_string().into(),
        i64::from(l.active).into(),
    ]
}

pub(crate) fn location_row(r: &Row) -> Result<Location> {
    let list = |i: usize| -> Result<Vec<String>> {
        serde_json::from_str(&r[i].text()?).map_err(|_| corrupt("location list"))
    };
    let currency =
        Currency::parse(&r[13].text()?).map_err(|_| corrupt("location cost currency"))?;
    Ok(Location {
        id: LocationId::parse(&r[0].text()?).map_err(|_| corrupt("location id"))?,
        name: r[1].text()?,
        kind: LocationKind::parse(&r[2].text()?).map_err(|_| corrupt("location kind"))?,
        lat: r[3].real()?,
        lon: r[4].real()?,
        country: r[5]
            .opt_text()?
            .map(|c| CountryCode::parse(&c))
            .transpose()
            .map_err(|_| corrupt("location country"))?,
        ships_to: list(6)?
            .iter()
            .map(|c| CountryCode::parse(c))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| corrupt("location ships_to"))?,
        capabilities: list(7)?
            .iter()
            .map(|c| Capability::parse(c))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| corrupt("location capability"))?,
        daily_capacity: r[8].opt_int()?.map(|n| n.clamp(0, u32::MAX as i64) as u32),
        cutoff: r[9]
            .opt_text()?
            .map(|c| Cutoff::parse(&c))
            .transpose()
            .map_err(|_| corrupt("location cutoff"))?,
        timezone: r[10].opt_text()?,
        handling_cost: Money::new(r[11].int()?, currency),
        cost_per_100km: Money::new(r[12].int()?, currency),
        active: r[14].int()? != 0,
    })
}

impl Store {
    /// The tenant's newest routing rules, with their version (`None`: never set).
    pub async fn routing_rules(
        &self,
        tenant: &str,
    ) -> Result<Option<ordo_domain::routing::TenantRules>> {
        let rows = self
            .read_rows(tenant, "SELECT version, body FROM routing_rules WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", vec![tenant.into()])
            .await?;
        rows.first()
            .map(|r| crate::routing::parse_rules(r[0].int()?, &r[1].text()?))
            .transpose()
    }

    /// Stores `body` as the tenant's next rules version, with its audit entry, in one commit; the
    /// current version when `body` is what it holds already. `None` when another change took that
    /// version first (the caller may retry).
    pub async fn put_routing_rules_audited(
        &self,
        tenant: &str,
        body: &str,
        audit: Option<AuditEntry>,
    ) -> Result<Option<i64>> {
        let (t, body) = (tenant.to_string(), body.to_string());
        let (version, _) = self
            .unit(tenant, move |tx| {
                let (t, body, audit) = (t.clone(), body.clone(), audit.clone());
                Box::pin(async move {
                    let rows = tx.rows("SELECT version, body FROM routing_rules WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", vec![t.as_str().into()]).await?;
                    let (previous, before) = match rows.first() {
                        Some(r) => (r[0].int()?, Some(r[1].text()?)),
                        None => (0, None),
                    };
                    // PUT is idempotent: the same rules again are the current version, not a new one.
                    if before.as_deref() == Some(body.as_str()) {
                        return Ok((Some(previous), false));
                    }
                    let inserted = tx
                        .rows(
                            "INSERT INTO routing_rules (tenant_id, version, body, created_at_ms) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (tenant_id, version) DO NOTHING RETURNING version",
                            vec![t.as_str().into(), (previous + 1).into(), body.as_str().into(), now_ms().into()],
                        )
                        .await?;
                    if inserted.is_empty() {
                        return Ok((None, false));
                    }
                    if let Some(who) = &audit {
                        crate::audit::append(tx, &t, who, "routing_rules.changed", "routing_rules", before, Some(body.clone())).await?;
                    }
                    Ok((Some(previous + 1), true))
                })
            })
            .await?;
        Ok(version)
    }
}
