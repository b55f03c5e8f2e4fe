//! The HTTP API, one module per resource. Handlers extract, call one service function and map
//! the result; every error leaves through `problem::ApiError` as RFC 9457 problem+json. Every
//! route is registered in `endpoints` with its access policy (the one table; the OpenAPI
//! document's security is written from it) and sits behind the same edge (`router`): request id,
//! trace span, metrics, timeout, panics.

pub mod audit;
pub mod auth;
pub mod carts;
pub mod docs;
pub mod edge;
pub mod events;
pub mod forecasts;
pub mod fulfillments;
pub mod health;
pub mod inputs;
pub mod inventory;
pub mod json;
pub mod limits;
pub mod locations;
pub mod me;
pub mod orders;
pub mod passkeys;
pub mod payment_tokens;
pub mod problem;
pub mod products;
pub mod replenishment;
pub mod returns;
pub mod routing;
pub mod telemetry;
mod test_routes;
pub mod tracking;
pub mod webhooks;

use crate::AppState;
use crate::auth::policy::{
    self, ADMIN, CARRIERS, ORDER_READERS, Policy, SHOPPERS, SHOPPING, STAFF,
};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state, map_request};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ordo API",
        description = "Order capture for mobile commerce: catalog, carts, payment tokens, orders, inventory. \
        Get a token at POST /v1/auth/token (OAuth2) and send it as `Authorization: Bearer <token>`; each operation names the roles it admits."
    ),
    paths(
        auth::token,
        auth::signup,
        auth::jwks,
        audit::list,
        passkeys::registration_options,
        passkeys::register,
        products::list,
        products::get,
        products::upsert,
        carts::create,
        carts::sync,
        carts::get,
        carts::hold,
        carts::shipping_options,
        payment_tokens::create,
        orders::place,
        orders::get,
        fulfillments::cancel,
        fulfillments::timeline,
        fulfillments::get,
        fulfillments::pick,
        fulfillments::pack,
        fulfillments::ship,
        fulfillments::deliver,
        fulfillments::pick_list,
        tracking::post_event,
        tracking::get,
        tracking::stream,
        returns::request,
        returns::exchange,
        returns::get,
        returns::receive,
        returns::disposition,
        inventory::get,
        inventory::adjust,
        inventory::changes,
        locations::list,
        locations::get,
        locations::put,
        routing::get,
        routing::put,
        routing::for_order,
        routing::decisions,
        events::list,
        me::notifications,
        me::stream,
        me::get_preferences,
        me::put_preferences,
        me::push_key,
        me::subscribe,
        me::subscriptions,
        me::unsubscribe,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::delete,
        webhooks::deliveries,
        webhooks::replay,
        health::healthz,
        health::readyz,
        telemetry::scrape,
        forecasts::get,
        replenishment::list,
    ),
    components(schemas(
        problem::Problem,
        passkeys::RegistrationInput,
        ordo_domain::FieldError,
        crate::services::forecasts::SkuForecast,
        crate::services::forecasts::ReplenishmentLine
    ))
)]
pub struct ApiDoc;

/// One route: where, who may call it, and whether the OpenAPI document describes it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub policy: Policy,
    pub documented: bool,
}

/// Every route of the API with its policy: the one table access is decided from. A route cannot
/// be mounted without a policy; a test walks this table against the OpenAPI document.
pub fn endpoints() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    use Policy::Anonymous;
    let e =
        |method: Method, path: &'static str, policy: Policy, handler: MethodRouter<AppState>| {
            (
                Endpoint {
                    method,
                    path,
                    policy,
                    documented: true,
                },
                handler,
            )
        };
    let mut all = vec![
        e(Method::GET, "/v1/products", Anonymous, get(products::list)),
        e(
            Method::GET,
            "/v1/products/{sku}",
            Anonymous,
            get(products::get),
        ),
        e(
            Method::PUT,
            "/v1/products/{sku}",
            ADMIN,
            put(products::upsert),
        ),
        e(Method::POST, "/v1/carts", SHOPPING, post(carts::create)),
        e(Method::GET, "/v1/carts/{id}", SHOPPING, get(carts::get)),
        e(Method::PUT, "/v1/carts/{id}", SHOPPING, put(carts::sync)),
        e(
            Method::POST,
            "/v1/carts/{id}/hold",
            SHOPPING,
            post(carts::hold),
        ),
        e(
            Method::GET,
            "/v1/carts/{id}/shipping-options",
            SHOPPING,
            get(carts::shipping_options),
        ),
        e(
            Method::POST,
            "/v1/payment-tokens",
            SHOPPING,
            post(payment_tokens::create),
        ),
        e(Method::POST, "/v1/orders", SHOPPING, post(orders::place)),
        e(
            Method::GET,
            "/v1/orders/{id}",
            ORDER_READERS,
            get(orders::get),
        ),
        e(
            Method::POST,
            "/v1/orders/{id}/cancel",
            ORDER_READERS,
            post(fulfillments::cancel),
        ),
        e(
            Method::GET,
            "/v1/orders/{id}/timeline",
            ORDER_READERS,
            get(fulfillments::timeline),
        ),
        e(
            Method::POST,
            "/v1/orders/{id}/returns",
            ORDER_READERS,
            post(returns::request),
        ),
        e(
            Method::POST,
            "/v1/orders/{id}/exchanges",
            ORDER_READERS,
            post(returns::exchange),
        ),
        e(
            Method::GET,
            "/v1/returns/{id}",
            ORDER_READERS,
            get(returns::get),
        ),
        e(
            Method::POST,
            "/v1/fulfillments/{id}/tracking-events",
            CARRIERS,
            post(tracking::post_event),
        ),
        e(
            Method::GET,
            "/v1/orders/{id}/tracking",
            ORDER_READERS,
            get(tracking::get),
        ),
        e(
            Method::GET,
            "/v1/orders/{id}/events",
            ORDER_READERS,
            get(tracking::stream),
        ),
        e(
            Method::POST,
            "/v1/returns/{id}/receive",
            STAFF,
            post(returns::receive),
        ),
        e(
            Method::POST,
            "/v1/returns/{id}/disposition",
            STAFF,
            post(returns::disposition),
        ),
        e(
            Method::GET,
            "/v1/fulfillments/{id}",
            STAFF,
            get(fulfillments::get),
        ),
        e(
            Method::POST,
            "/v1/fulfillments/{id}/pick",
            STAFF,
            post(fulfillments::pick),
        ),
        e(
            Method::POST,
            "/v1/fulfillments/{id}/pack",
            STAFF,
            post(fulfillments::pack),
        ),
        e(
            Method::POST,
            "/v1/fulfillments/{id}/ship",
            STAFF,
            post(fulfillments::ship),
        ),
        e(
            Method::POST,
            "/v1/fulfillments/{id}/deliver",
            STAFF,
            post(fulfillments::deliver),
        ),
        e(
            Method::GET,
            "/v1/locations/{id}/pick-list",
            STAFF,
            get(fulfillments::pick_list),
        ),
        e(
            Method::POST,
            "/v1/inventory/adjustments",
            STAFF,
            post(inventory::adjust),
        ),
        e(
            Method::GET,
            "/v1/inventory/changes",
            STAFF,
            get(inventory::changes),
        ),
        e(
            Method::GET,
            "/v1/inventory/{sku}",
            STAFF,
            get(inventory::get),
        ),
        e(Method::GET, "/v1/locations", STAFF, get(locations::list)),
        e(
            Method::GET,
            "/v1/locations/{id}",
            STAFF,
            get(locations::get),
        ),
        e(
            Method::PUT,
            "/v1/locations/{id}",
            ADMIN,
            put(locations::put),
        ),
        e(Method::GET, "/v1/routing/rules", STAFF, get(routing::get)),
        e(Method::PUT, "/v1/routing/rules", ADMIN, put(routing::put)),
        e(
            Method::GET,
            "/v1/orders/{id}/routing",
            STAFF,
            get(routing::for_order),
        ),
        e(
            Method::GET,
            "/v1/routing/decisions",
            ADMIN,
            get(routing::decisions),
        ),
        e(Method::GET, "/v1/events", ADMIN, get(events::list)),
        e(
            Method::GET,
            "/v1/me/notifications",
            SHOPPERS,
            get(me::notifications),
        ),
        e(
            Method::GET,
            "/v1/me/notifications/stream",
            SHOPPERS,
            get(me::stream),
        ),
        e(
            Method::GET,
            "/v1/me/notification-preferences",
            SHOPPERS,
            get(me::get_preferences),
        ),
        e(
            Method::PUT,
            "/v1/me/notification-preferences",
            SHOPPERS,
            put(me::put_preferences),
        ),
        e(Method::GET, "/v1/me/push-key", SHOPPERS, get(me::push_key)),
        e(
            Method::POST,
            "/v1/me/push-subscriptions",
            SHOPPERS,
            post(me::subscribe),
        ),
        e(
            Method::GET,
            "/v1/me/push-subscriptions",
            SHOPPERS,
            get(me::subscriptions),
        ),
        e(
            Method::DELETE,
            "/v1/me/push-subscriptions/{id}",
            SHOPPERS,
            delete(me::unsubscribe),
        ),
        e(Method::POST, "/v1/webhooks", ADMIN, post(webhooks::create)),
        e(Method::GET, "/v1/webhooks", ADMIN, get(webhooks::list)),
        e(Method::GET, "/v1/webhooks/{id}", ADMIN, get(webhooks::get)),
        e(
            Method::DELETE,
            "/v1/webhooks/{id}",
            ADMIN,
            delete(webhooks::delete),
        ),
        e(
            Method::GET,
            "/v1/webhooks/{id}/deliveries",
            ADMIN,
            get(webhooks::deliveries),
        ),
        e(
            Method::POST,
            "/v1/webhooks/{id}/deliveries/{delivery}/replay",
            ADMIN,
            post(webhooks::replay),
        ),
        e(Method::POST, "/v1/auth/token", Anonymous, post(auth::token)),
        e(
            Method::POST,
            "/v1/auth/signup",
            Anonymous,
            post(auth::signup),
        ),
        e(
            Method::GET,
            "/.well-known/jwks.json",
            Anonymous,
            get(auth::jwks),
        ),
        e(
            Method::POST,
            "/v1/auth/passkeys/registration-options",
            SHOPPERS,
            post(passkeys::registration_options),
        ),
        e(
            Method::POST,
            "/v1/auth/passkeys",
            SHOPPERS,
            post(passkeys::register),
        ),
        e(
            Method::GET,
            "/v1/forecasts/{sku}",
            STAFF,
            get(forecasts::get),
        ),
        e(
            Method::GET,
            "/v1/replenishment",
            STAFF,
            get(replenishment::list),
        ),
        e(Method::GET, "/v1/audit", ADMIN, get(audit::list)),
        e(Method::GET, "/healthz", Anonymous, get(health::healthz)),
        e(Method::GET, "/readyz", Anonymous, get(health::readyz)),
        e(Method::GET, "/metrics", ADMIN, get(telemetry::scrape)),
    ];
    // The document itself, its browsable reference and the home page are not operations of the API.
    all.push((
        Endpoint {
            method: Method::GET,
            path: "/openapi.json",
            policy: Anonymous,
            documented: false,
        },
        get(openapi),
    ));
    all.push((
        Endpoint {
            method: Method::GET,
            path: "/",
            policy: Anonymous,
            documented: false,
        },
        get(index),
    ));
    all.push((
        Endpoint {
            method: Method::GET,
            path: "/docs",
            policy: Anonymous,
            documented: false,
        },
        get(docs::root),
    ));
    all.push((
        Endpoint {
            method: Method::GET,
            path: "/docs/",
            policy: Anonymous,
            documented: false,
        },
        get(docs::index),
    ));
    all.push((
        Endpoint {
            method: Method::GET,
            path: "/docs/{*file}",
            policy: Anonymous,
            documented: false,
        },
        get(docs::asset),
    ));
    all
}

/// The OpenAPI document, with each operation's security and 401/403 answers written from the
/// policy table.
pub fn openapi_document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["components"]["securitySchemes"] = serde_json::json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "an access token from POST /v1/auth/token (client_credentials, password or refresh_token grant)"},
        "oauth2": {"type": "oauth2", "flows": {
            "clientCredentials": {"tokenUrl": "/v1/auth/token", "scopes": {"catalog": "catalog", "carts": "carts", "orders": "orders", "inventory": "stock", "admin": "administration"}},
            "password": {"tokenUrl": "/v1/auth/token", "refreshUrl": "/v1/auth/token", "scopes": {"catalog": "catalog", "carts": "carts", "orders": "orders"}}}}
    });
    let problem = |description: &str| serde_json::json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    // Problems are sent as application/problem+json: say so wherever one is documented.
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for op in paths
            .values_mut()
            .filter_map(|i| i.as_object_mut())
            .flat_map(|i| i.values_mut())
        {
            for response in op
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
                .into_iter()
                .flat_map(|r| r.values_mut())
            {
                let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut())
                else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .is_some_and(|j| j["schema"]["$ref"] == "#/components/schemas/Problem");
                if is_problem {
                    if let Some(body) = content.remove("application/json") {
                        content.insert("application/problem+json".into(), body);
                    }
                }
            }
        }
    }
    describe_edges(&mut doc);
    for (e, _) in endpoints().into_iter().filter(|(e, _)| e.documented) {
        let method = e.method.as_str().to_ascii_lowercase();
        let Some(op) = doc
            .get_mut("paths")
            .and_then(|p| p.get_mut(e.path))
            .and_then(|p| p.get_mut(&method))
        else {
            continue;
        };
        let roles: Vec<&str> = e.policy.roles().iter().map(|r| r.as_str()).collect();
        if roles.is_empty() {
            op["security"] = serde_json::json!([{}, {"bearer": []}]);
        } else {
            op["security"] = serde_json::json!([{"bearer": []}, {"oauth2": []}]);
            op["x-ordo-roles"] = serde_json::json!(roles);
            op["responses"]["401"] = problem(
                "missing, malformed, expired or otherwise invalid token (WWW-Authenticate: Bearer)",
            );
            // An operation's own 403 (e.g. a passkey step-up) keeps its description beside the role rule.
            let forbidden = format!(
                "the token's role may not do this (allowed: {})",
                roles.join(", ")
            );
            let forbidden = match op["responses"]["403"]["description"].as_str() {
                Some(own) => format!("{own}; or {forbidden}"),
                None => forbidden,
            };
            op["responses"]["403"] = problem(&forbidden);
        }
    }
    doc
}

/// Each documented operation's id (a test checks that every operation has one of these).
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("/.well-known/jwks.json", "get", "getSigningKeys"),
    ("/healthz", "get", "getHealth"),
    ("/readyz", "get", "getReadiness"),
    ("/metrics", "get", "getMetrics"),
    ("/v1/audit", "get", "listAuditEntries"),
    ("/v1/auth/signup", "post", "signUp"),
    ("/v1/auth/token", "post", "issueToken"),
    (
        "/v1/auth/passkeys/registration-options",
        "post",
        "getPasskeyRegistrationOptions",
    ),
    ("/v1/auth/passkeys", "post", "registerPasskey"),
    ("/v1/carts", "post", "createCart"),
    ("/v1/carts/{id}", "get", "getCart"),
    ("/v1/carts/{id}", "put", "syncCart"),
    ("/v1/carts/{id}/hold", "post", "holdCart"),
    (
        "/v1/carts/{id}/shipping-options",
        "get",
        "getShippingOptions",
    ),
    ("/v1/forecasts/{sku}", "get", "getForecast"),
    ("/v1/inventory/adjustments", "post", "adjustInventory"),
    ("/v1/inventory/{sku}", "get", "getInventory"),
    ("/v1/locations", "get", "listLocations"),
    ("/v1/locations/{id}", "get", "getLocation"),
    ("/v1/locations/{id}", "put", "putLocation"),
    ("/v1/routing/rules", "get", "getRoutingRules"),
    ("/v1/routing/rules", "put", "putRoutingRules"),
    ("/v1/orders/{id}/routing", "get", "getOrderRouting"),
    ("/v1/routing/decisions", "get", "listRoutingDecisions"),
    ("/v1/events", "get", "listEvents"),
    ("/v1/me/notifications", "get", "listMyNotifications"),
    (
        "/v1/me/notifications/stream",
        "get",
        "streamMyNotifications",
    ),
    (
        "/v1/me/notification-preferences",
        "get",
        "getMyNotificationPreferences",
    ),
    (
        "/v1/me/notification-preferences",
        "put",
        "putMyNotificationPreferences",
    ),
    ("/v1/me/push-key", "get", "getPushKey"),
    (
        "/v1/me/push-subscriptions",
        "post",
        "createPushSubscription",
    ),
    ("/v1/me/push-subscriptions", "get", "listPushSubscriptions"),
    (
        "/v1/me/push-subscriptions/{id}",
        "delete",
        "deletePushSubscription",
    ),
    ("/v1/webhooks", "post", "createWebhook"),
    ("/v1/webhooks", "get", "listWebhooks"),
    ("/v1/webhooks/{id}", "get", "getWebhook"),
    ("/v1/webhooks/{id}", "delete", "deleteWebhook"),
    (
        "/v1/webhooks/{id}/deliveries",
        "get",
        "listWebhookDeliveries",
    ),
    (
        "/v1/webhooks/{id}/deliveries/{delivery}/replay",
        "post",
        "replayWebhookDelivery",
    ),
    ("/v1/inventory/changes", "get", "listInventoryChanges"),
    ("/v1/orders", "post", "placeOrder"),
    ("/v1/orders/{id}", "get", "getOrder"),
    ("/v1/orders/{id}/cancel", "post", "cancelOrder"),
    ("/v1/orders/{id}/timeline", "get", "getOrderTimeline"),
    ("/v1/orders/{id}/returns", "post", "requestReturn"),
    ("/v1/orders/{id}/exchanges", "post", "exchangeUnits"),
    ("/v1/returns/{id}", "get", "getReturn"),
    (
        "/v1/fulfillments/{id}/tracking-events",
        "post",
        "addTrackingEvent",
    ),
    ("/v1/orders/{id}/tracking", "get", "getOrderTracking"),
    ("/v1/orders/{id}/events", "get", "streamOrderEvents"),
    ("/v1/returns/{id}/receive", "post", "receiveReturn"),
    ("/v1/returns/{id}/disposition", "post", "dispositionReturn"),
    ("/v1/fulfillments/{id}", "get", "getFulfillment"),
    ("/v1/fulfillments/{id}/pick", "post", "pickFulfillment"),
    ("/v1/fulfillments/{id}/pack", "post", "packFulfillment"),
    ("/v1/fulfillments/{id}/ship", "post", "shipFulfillment"),
    (
        "/v1/fulfillments/{id}/deliver",
        "post",
        "deliverFulfillment",
    ),
    ("/v1/locations/{id}/pick-list", "get", "getPickList"),
    ("/v1/payment-tokens", "post", "createPaymentToken"),
    ("/v1/products", "get", "listProducts"),
    ("/v1/products/{sku}", "get", "getProduct"),
    ("/v1/products/{sku}", "put", "upsertProduct"),
    ("/v1/replenishment", "get", "listReplenishment"),
];

/// What every operation shares, written once: the `Idempotency-Key` header's syntax, the answers
/// any JSON body can get (400 malformed, 413 too large, 415 not JSON), and the links from a
/// created resource to the operations that read or change it (client generators and stateful
/// fuzzers follow them).
fn describe_edges(doc: &mut serde_json::Value) {
    use serde_json::json;
    let problem = |description: &str| json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|i| i.as_object_mut())
        .flat_map(|i| i.values_mut())
    {
        for p in op
            .get_mut("parameters")
            .and_then(|p| p.as_array_mut())
            .into_iter()
            .flatten()
        {
            if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                p["schema"] = json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"});
            }
        }
        let json_body = op["requestBody"]["content"]
            .get("application/json")
            .is_some();
        if let Some(responses) = op
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
            .filter(|_| json_body)
        {
            responses.entry("400").or_insert_with(|| {
                problem("malformed JSON, or a missing or invalid Idempotency-Key")
            });
            responses
                .entry("413")
                .or_insert_with(|| problem("the body is larger than the limit"));
            responses
                .entry("415")
                .or_insert_with(|| problem("the body is not sent as application/json"));
        }
    }
    // Operation ids become method names in generated clients: unique, and named for what they do.
    for (path, method, id) in OPERATION_IDS {
        if let Some(op) = paths.get_mut(*path).and_then(|p| p.get_mut(*method)) {
            op["operationId"] = json!(id);
        }
    }
    let link = |operation: &str, param: &str, description: &str| json!({"operationRef": operation, "parameters": {param: "$response.body#/id"}, "description": description});
    let links = [
        (
            "/v1/carts",
            "post",
            "201",
            vec![
                (
                    "GetCart",
                    link("#/paths/~1v1~1carts~1{id}/get", "id", "read the cart"),
                ),
                (
                    "SyncCart",
                    link("#/paths/~1v1~1carts~1{id}/put", "id", "sync the cart"),
                ),
            ],
        ),
        (
            "/v1/orders",
            "post",
            "201",
            vec![
                (
                    "GetOrder",
                    link("#/paths/~1v1~1orders~1{id}/get", "id", "read the order"),
                ),
                (
                    "GetOrderTimeline",
                    link(
                        "#/paths/~1v1~1orders~1{id}~1timeline/get",
                        "id",
                        "read its timeline",
                    ),
                ),
                (
                    "CancelOrder",
                    link("#/paths/~1v1~1orders~1{id}~1cancel/post", "id", "cancel it"),
                ),
                (
                    "RequestReturn",
                    link(
                        "#/paths/~1v1~1orders~1{id}~1returns/post",
                        "id",
                        "ask for units back",
                    ),
                ),
                (
                    "PickFulfillment",
                    json!({"operationRef": "#/paths/~1v1~1fulfillments~1{id}~1pick/post", "parameters": {"id": "$response.body#/fulfillments/0/id"}, "description": "pick its first fulfilment"}),
                ),
            ],
        ),
        (
            "/v1/fulfillments/{id}/pick",
            "post",
            "200",
            vec![(
                "PackFulfillment",
                link(
                    "#/paths/~1v1~1fulfillments~1{id}~1pack/post",
                    "id",
                    "pack it",
                ),
            )],
        ),
        (
            "/v1/fulfillments/{id}/pack",
            "post",
            "200",
            vec![(
                "ShipFulfillment",
                link(
                    "#/paths/~1v1~1fulfillments~1{id}~1ship/post",
                    "id",
                    "ship it",
                ),
            )],
        ),
        (
            "/v1/fulfillments/{id}/ship",
            "post",
            "200",
            vec![(
                "DeliverFulfillment",
                link(
                    "#/paths/~1v1~1fulfillments~1{id}~1deliver/post",
                    "id",
                    "deliver it",
                ),
            )],
        ),
        (
            "/v1/orders/{id}/returns",
            "post",
            "201",
            vec![
                (
                    "GetReturn",
                    link("#/paths/~1v1~1returns~1{id}/get", "id", "read the return"),
                ),
                (
                    "ReceiveReturn",
                    link(
                        "#/paths/~1v1~1returns~1{id}~1receive/post",
                        "id",
                        "receive it",
                    ),
                ),
                (
                    "DispositionReturn",
                    link(
                        "#/paths/~1v1~1returns~1{id}~1disposition/post",
                        "id",
                        "decide its units' fate",
                    ),
                ),
            ],
        ),
        (
            "/v1/webhooks",
            "post",
            "201",
            vec![
                (
                    "GetWebhook",
                    link("#/paths/~1v1~1webhooks~1{id}/get", "id", "read the webhook"),
                ),
                (
                    "ListWebhookDeliveries",
                    link(
                        "#/paths/~1v1~1webhooks~1{id}~1deliveries/get",
                        "id",
                        "its deliveries",
                    ),
                ),
                (
                    "DeleteWebhook",
                    link("#/paths/~1v1~1webhooks~1{id}/delete", "id", "unsubscribe"),
                ),
            ],
        ),
        (
            "/v1/products/{sku}",
            "put",
            "200",
            vec![
                (
                    "GetProduct",
                    json!({"operationRef": "#/paths/~1v1~1products~1{sku}/get", "parameters": {"sku": "$request.path.sku"}}),
                ),
                (
                    "GetInventory",
                    json!({"operationRef": "#/paths/~1v1~1inventory~1{sku}/get", "parameters": {"sku": "$request.path.sku"}}),
                ),
            ],
        ),
    ];
    for (path, method, status, ls) in links {
        if let Some(r) = paths
            .get_mut(path)
            .and_then(|p| p.get_mut(method))
            .and_then(|o| o["responses"].get_mut(status))
        {
            r["links"] = serde_json::Value::Object(
                ls.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            );
        }
    }
}

async fn openapi() -> Json<serde_json::Value> {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(openapi_document).clone())
}

async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("index.html"))
}

/// Every route behind the edge. Layers run outermost first, after routing (so metrics see the
/// route template): a client's unsafe `x-request-id` is dropped, one is generated if missing and
/// returned on every response; the trace span carries it; problem bodies get it; the request is
/// counted and timed; it gets `request_timeout` to finish; a panic becomes a 500 problem.
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new();
    for (e, handler) in endpoints() {
        let guarded = handler.route_layer(from_fn_with_state(
            (state.clone(), e.policy),
            policy::authorize,
        ));
        routes = routes.route(e.path, guarded);
    }
    if state.config.test_routes {
        routes = routes.merge(test_routes::routes());
    }
    let edge = ServiceBuilder::new()
        .layer(edge::security_headers())
        .layer(edge::cors(&state.config.cors_origins))
        .layer(from_fn_with_state(
            state.limits.clone(),
            limits::limit_per_ip,
        ))
        .layer(map_request(edge::drop_unsafe_request_id))
        .layer(SetRequestIdLayer::new(edge::REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(edge::REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(edge::request_span))
        .layer(from_fn(edge::stamp_request_id_on_problems))
        .layer(from_fn(telemetry::record_request))
        .layer(from_fn_with_state(
            state.config.request_timeout,
            edge::enforce_timeout,
        ))
        .layer(CatchPanicLayer::custom(edge::panic_problem));
    routes
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(edge)
        .with_state(state)
}

/// A JSON answer carrying an `ETag` of its bytes; `304 Not Modified` without a body when the
/// request's `If-None-Match` names that tag (or `*`). Caches and apps revalidate cheaply: the tag
/// changes whenever anything in the answer does (for a product: its price or what is available).
pub(crate) fn json_with_etag<T: serde::Serialize>(
    headers: &axum::http::HeaderMap,
    body: &T,
) -> Result<axum::response::Response, problem::ApiError> {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(body)
        .map_err(|e| problem::ApiError::Internal(format!("answer: {e}")))?;
    let digest = Sha256::digest(&bytes);
    let tag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == tag);
    let etag = HeaderValue::from_str(&tag)
        .map_err(|e| problem::ApiError::Internal(format!("etag: {e}")))?;
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, bytes).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    res.headers_mut().insert(header::ETAG, etag);
    Ok(res)
}

/// The `Idempotency-Key` header as the services take it: `None` when absent, `Some("\0")` when
/// present but not visible ASCII (so it is reported as invalid, not missing).
pub(crate) fn idempotency_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// A service's finished answer as a response: its status and JSON body, `Location` when the
/// body names a created resource under `collection`, and `Idempotent-Replayed: true` on a replay.
pub(crate) fn answer_response(
    answer: crate::services::idempotency::Answer,
    collection: Option<&str>,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let location = collection.and_then(|c| {
        let id = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()?
            .get("id")?
            .as_str()?
            .to_string();
        HeaderValue::from_str(&format!("{c}/{id}")).ok()
    });
    let mut res = (status, answer.body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    if answer.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every route has a policy (by construction: `endpoints` is the only way to mount one), and
    /// the OpenAPI document and the table describe the same operations, each with its security.
    #[test]
    fn every_route_has_a_policy_and_the_document_declares_it() {
        let doc = openapi_document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(
                    op["security"].is_array(),
                    "{method} {path} declares no security"
                );
            }
        }
        let table: BTreeSet<(String, String)> = endpoints()
            .iter()
            .filter(|(e, _)| e.documented)
            .map(|(e, _)| (e.method.to_string(), e.path.to_string()))
            .collect();
        assert_eq!(
            documented, table,
            "the OpenAPI document and the policy table list the same operations"
        );
        // Every path parameter is declared; every problem is documented as problem+json.
        for (path, item) in doc["paths"].as_object().unwrap() {
            let names: Vec<&str> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                for name in &names {
                    let declared = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| {
                            p["in"] == "path" && p["name"] == *name && p["required"] == true
                        })
                    });
                    assert!(
                        declared,
                        "{method} {path} declares its path parameter {name}"
                    );
                }
                for (status, r) in op["responses"].as_object().unwrap() {
                    assert!(
                        r["content"]
                            .get("application/json")
                            .is_none_or(|j| j["schema"]["$ref"] != "#/components/schemas/Problem"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        // Every operation has a unique, named id; every JSON body has an example and documents
        // the answers any body can get.
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                assert!(
                    OPERATION_IDS
                        .iter()
                        .any(|(p, m, i)| p == path && m == method && *i == id),
                    "{method} {path} has a named operationId (OPERATION_IDS)"
                );
                assert!(ids.insert(id.clone()), "operationId {id} is used twice");
                if let Some(body) = op["requestBody"]["content"].get("application/json") {
                    assert!(
                        body.get("example").is_some() || body.get("examples").is_some(),
                        "{method} {path} shows an example body"
                    );
                    for status in ["400", "413", "415", "422"] {
                        assert!(
                            op["responses"][status]["content"]["application/problem+json"]
                                .is_object(),
                            "{method} {path} documents {status}"
                        );
                    }
                }
            }
        }
        for (e, _) in endpoints() {
            let op = if e.documented {
                doc["paths"][e.path][e.method.as_str().to_lowercase()].clone()
            } else {
                continue;
            };
            match e.policy {
                Policy::Anonymous => assert!(
                    op["security"]
                        .as_array()
                        .unwrap()
                        .contains(&serde_json::json!({})),
                    "{} {} is anonymous",
                    e.method,
                    e.path
                ),
                Policy::Roles(roles) => {
                    assert!(!roles.is_empty());
                    assert_eq!(
                        op["security"][0],
                        serde_json::json!({"bearer": []}),
                        "{} {}",
                        e.method,
                        e.path
                    );
                    assert!(
                        op["responses"]["401"]["content"]["application/problem+json"].is_object(),
                        "{} {} documents 401",
                        e.method,
                        e.path
                    );
                    assert!(
                        op["responses"]["403"].is_object(),
                        "{} {} documents 403",
                        e.method,
                        e.path
                    );
                }
            }
        }
    }

    /// What the policy says, spelled out: a change to the table must change this test.
    #[test]
    fn the_policy_is_the_documented_one() {
        use crate::auth::Role::*;
        let policy = |m: Method, p: &str| {
            endpoints()
                .into_iter()
                .find(|(e, _)| e.method == m && e.path == p)
                .map(|(e, _)| e.policy.roles().to_vec())
        };
        assert_eq!(policy(Method::GET, "/v1/products"), Some(vec![]));
        assert_eq!(policy(Method::PUT, "/v1/products/{sku}"), Some(vec![Admin]));
        assert_eq!(policy(Method::POST, "/v1/orders"), Some(vec![App, Shopper]));
        assert_eq!(
            policy(Method::GET, "/v1/orders/{id}"),
            Some(vec![Shopper, Guest, Staff, Admin])
        );
        assert_eq!(
            policy(Method::POST, "/v1/inventory/adjustments"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(policy(Method::POST, "/v1/auth/token"), Some(vec![]));
        assert_eq!(
            policy(Method::GET, "/v1/locations"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(
            policy(Method::GET, "/v1/locations/{id}"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(policy(Method::PUT, "/v1/locations/{id}"), Some(vec![Admin]));
        assert_eq!(
            policy(Method::GET, "/v1/routing/rules"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(policy(Method::PUT, "/v1/routing/rules"), Some(vec![Admin]));
        assert_eq!(
            policy(Method::GET, "/v1/orders/{id}/routing"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(
            policy(Method::GET, "/v1/routing/decisions"),
            Some(vec![Admin])
        );
        assert_eq!(
            policy(Method::GET, "/v1/inventory/changes"),
            Some(vec![Staff, Admin])
        );
        assert_eq!(
            policy(Method::POST, "/v1/auth/passkeys/registration-options"),
            Some(vec![Shopper])
        );
        assert_eq!(
            policy(Method::POST, "/v1/auth/passkeys"),
            Some(vec![Shopper])
        );
    }
}
