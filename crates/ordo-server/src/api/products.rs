//! `/v1/products`: the catalog read API (search and cursor paging) and staff's create-or-update.

use super::inputs::{MoneyInput, parse_money};
use super::json::{ApiJson, PathParam};
use super::problem::{ApiError, Problem};
use super::{answer_response, idempotency_header};
use crate::AppState;
use crate::auth::Caller;
use crate::services::idempotency::{self, Operation};
use crate::services::{catalog, rfc3339};
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ordo_domain::{FieldErrors, Money, Sku};
use ordo_store::{ProductUpsert, ProductView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductBody {
    pub sku: String,
    pub name: String,
    pub price: Money,
    /// Units available to sell across all locations.
    pub available: i64,
    pub category: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub hazmat: bool,
    pub cold_chain: bool,
    pub weight_grams: Option<u32>,
    pub updated_at: String,
}

impl From<ProductView> for ProductBody {
    fn from(v: ProductView) -> Self {
        ProductBody {
            sku: v.product.sku.to_string(),
            name: v.product.name,
            price: v.product.price,
            available: v.available,
            category: v.product.category,
            attributes: v.product.attributes,
            hazmat: v.product.fulfilment.hazmat,
            cold_chain: v.product.fulfilment.cold_chain,
            weight_grams: v.product.fulfilment.weight_grams,
            updated_at: rfc3339(v.product.updated_at_ms),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpsertInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub price: MoneyInput,
    #[schema(max_length = 100)]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Ships only from nodes with the `hazmat` capability (default false).
    pub hazmat: Option<bool>,
    /// Ships only from nodes with the `cold_chain` capability (default false).
    pub cold_chain: Option<bool>,
    /// Shipping weight of one unit.
    #[schema(minimum = 0, maximum = 1000000)]
    pub weight_grams: Option<i64>,
}

/// The heaviest unit Ordo accepts (1 t).
const MAX_WEIGHT_GRAMS: i64 = 1_000_000;

fn encode_cursor(sku: &str) -> String {
    sku.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(c: &str) -> Option<String> {
    if c.len() % 2 != 0 || c.len() > 256 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?)
        .ok()
        .filter(|s| Sku::parse(s).is_ok())
}

/// Search and page the catalog.
#[utoipa::path(get, path = "/v1/products", tag = "catalog",
    params(("q" = Option<String>, Query, max_length = 100, description = "case-insensitive search in name, SKU and category"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
           ("cursor" = Option<String>, Query, max_length = 128, pattern = "^(?:2[de]|3[0-9]|4[1-9a-f]|5[0-9af]|6[1-9a-f]|7[0-9a])*$", description = "next_cursor of the previous page")),
    responses((status = 200, body = ProductPage), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ProductPage>, ApiError> {
    let mut errs = FieldErrors::default();
    let limit = match params.get("limit") {
        None => 20,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                errs.add("limit", "out_of_range", "limit is an integer from 1 to 100");
                20
            }
        },
    };
    let after = match params.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(s) => Some(s),
            None => {
                errs.add(
                    "cursor",
                    "invalid_cursor",
                    "pass a next_cursor value returned by this endpoint",
                );
                None
            }
        },
    };
    let q = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        errs.add("q", "too_long", "a search has at most 100 characters");
    }
    errs.into_result()?;
    let mut rows = state
        .store
        .list_products(caller.tenant(), q, after.as_deref(), limit + 1)
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.product.sku.as_str()))
    } else {
        None
    };
    Ok(Json(ProductPage {
        items: rows.into_iter().map(ProductBody::from).collect(),
        next_cursor,
    }))
}

fn parse_sku_path(sku: &str) -> Result<Sku, ApiError> {
    Sku::parse(sku).map_err(|e| ApiError::field("sku", &e.code, e.message))
}

/// One product with its price and availability.
#[utoipa::path(get, path = "/v1/products/{sku}", tag = "catalog",
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product's SKU"),
           ("If-None-Match" = Option<String>, Header, description = "the ETag of a copy held: 304 while the product (price, availability, …) is unchanged")),
    responses((status = 200, body = ProductBody, description = "the product; header ETag tags this answer"),
              (status = 304, description = "unchanged since the ETag given in If-None-Match"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    PathParam(sku): PathParam,
) -> Result<Response, ApiError> {
    let parsed = Sku::parse(&sku).map_err(|_| ApiError::NotFound(format!("product {sku}")))?;
    let v = state
        .store
        .product(caller.tenant(), &parsed)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {sku}")))?;
    super::json_with_etag(&headers, &ProductBody::from(v))
}

/// Create or update a product (staff).
#[utoipa::path(put, path = "/v1/products/{sku}", tag = "catalog",
    request_body(content = ProductUpsertInput, example = json!({"name": "Crew Tee", "price": {"amount": 1900, "currency": "USD"}, "category": "apparel", "attributes": {"color": "Black", "size": "M"}})),
    params(("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the product's SKU"),
           ("Idempotency-Key" = Option<String>, Header, description = "optional; a retry with the same key returns the first answer")),
    responses((status = 200, body = ProductBody, description = "updated"), (status = 201, body = ProductBody, description = "created"),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "invalid Idempotency-Key, malformed JSON"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json", description = "storage unreachable or the request timed out; retry after Retry-After")))]
pub async fn upsert(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(sku): PathParam,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ProductUpsertInput>,
) -> Result<Response, ApiError> {
    let key = idempotency::parse_key(
        idempotency_header(&headers),
        Operation::UpsertProduct,
        false,
    )?;
    let mut errs = FieldErrors::default();
    let sku = parse_sku_path(&sku).ok();
    if sku.is_none() {
        errs.add(
            "sku",
            "invalid_format",
            "a SKU has 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    let name = input.name.trim();
    if ordo_domain::contact::has_control_chars(name)
        || input
            .category
            .as_deref()
            .is_some_and(ordo_domain::contact::has_control_chars)
    {
        errs.add(
            if ordo_domain::contact::has_control_chars(name) {
                "name"
            } else {
                "category"
            },
            "invalid_characters",
            "control characters are not allowed",
        );
    }
    if name.is_empty() || name.chars().count() > 200 {
        errs.add(
            "name",
            "invalid_length",
            "a product name has 1 to 200 characters",
        );
    }
    let price = parse_money(&input.price, "price", &mut errs);
    let category = input
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from);
    if category.as_ref().is_some_and(|c| c.chars().count() > 100) {
        errs.add(
            "category",
            "too_long",
            "a category has at most 100 characters",
        );
    }
    let weight_grams = match input.weight_grams {
        Some(g) if !(0..=MAX_WEIGHT_GRAMS).contains(&g) => {
            errs.add(
                "weight_grams",
                "out_of_range",
                format!("weight_grams is 0 to {MAX_WEIGHT_GRAMS}"),
            );
            None
        }
        g => g.map(|g| g as u32),
    };
    let fulfilment = ordo_domain::Fulfilment {
        hazmat: input.hazmat.unwrap_or(false),
        cold_chain: input.cold_chain.unwrap_or(false),
        weight_grams,
    };
    let attributes = input.attributes.unwrap_or_default();
    if serde_json::to_string(&attributes)
        .map(|s| s.len())
        .unwrap_or(0)
        > 16 * 1024
    {
        errs.add(
            "attributes",
            "too_large",
            "attributes take at most 16 KiB of JSON",
        );
    }
    errs.into_result()?;
    let (Some(sku), Some(price)) = (sku, price) else {
        return Err(ApiError::Internal(
            "validated product upsert lost its sku or price".into(),
        ));
    };
    let canonical = serde_json::json!({"name": name, "price": price, "category": category, "attributes": attributes, "fulfilment": fulfilment});
    let key = key.map(|k| {
        idempotency::scoped(
            Operation::UpsertProduct,
            &caller,
            sku.as_str(),
            &k,
            &canonical,
        )
    });
    let product = ProductUpsert {
        sku,
        name: name.to_string(),
        price,
        category,
        attributes,
        fulfilment,
    };
    let answer = catalog::upsert_product(&state, &caller, product, key, |v| {
        serde_json::to_string(&ProductBody::from(v.clone())).unwrap_or_default()
    })
    .await?;
    Ok(answer_response(answer, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(
            decode_cursor(&encode_cursor("TEE-RED.M")).as_deref(),
            Some("TEE-RED.M")
        );
        assert!(decode_cursor("zz").is_none());
        assert!(decode_cursor("abc").is_none());
        assert!(decode_cursor(&encode_cursor("a b")).is_none());
    }
}
