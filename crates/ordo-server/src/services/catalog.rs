//! Staff's create-or-update of a product. A product upsert is idempotent by nature (it sets, it
//! does not add); with an Idempotency-Key a retry also gets the first answer back unchanged.

use super::error::Result;
use super::idempotency::{self, Answer};
use crate::AppState;
use ordo_store::{IdempotencyKey, Idempotent, ProductUpsert, ProductView, Render};
use std::sync::Arc;

/// Upserts the product; `render` turns the stored product into the answer's JSON body.
pub async fn upsert_product(
    state: &AppState,
    caller: &crate::auth::Caller,
    product: ProductUpsert,
    key: Option<IdempotencyKey>,
    render: fn(&ProductView) -> String,
) -> Result<Answer> {
    if let Some(answer) = idempotency::answered(state, caller, key.as_ref()).await? {
        return Ok(answer);
    }
    let status = |created: bool| if created { 201 } else { 200 };
    let stored: Render<(ProductView, bool)> =
        Arc::new(move |(v, created)| (i64::from(status(*created)), render(v)));
    let hash = key
        .as_ref()
        .map(|k| k.request_hash.clone())
        .unwrap_or_default();
    match state
        .store
        .upsert_product_audited(
            caller.tenant(),
            &product,
            key.map(|k| (k, stored)),
            caller.audit_entry(),
        )
        .await?
    {
        Idempotent::Done((v, created)) => Ok(Answer {
            status: status(created),
            body: render(&v),
            replayed: false,
        }),
        Idempotent::Replay(rec) => idempotency::settle(&rec, &hash),
    }
}
