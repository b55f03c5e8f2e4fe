//! Write units: a piece of write logic that runs inside the write path's transaction on either
//! backend — on SQLite inside the single writer's batch (its own savepoint, sharing the batch's
//! commit), on PostgreSQL in a transaction of its own on a pooled connection. Every write that is
//! not a placement is a unit: single statements, idempotent creates, adjustments, admin upserts.
//! A unit decides whether its writes stand (`true`) or roll back (`false`); its value is returned
//! either way, after the commit.

use crate::StoreError;
use crate::sql::Tx;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A unit's value, type-erased while it travels through the writer's queue.
pub(crate) type Erased = Box<dyn Any + Send>;

/// A unit, callable again if its batch has to be re-run unit by unit.
pub(crate) type UnitFn = Arc<
    dyn for<'a, 'c> Fn(&'a mut Tx<'c>) -> BoxFuture<'a, Result<(Erased, bool), StoreError>>
        + Send
        + Sync,
>;

/// Wraps typed unit logic into the queue's erased form.
pub(crate) fn erase<T, F>(f: F) -> UnitFn
where
    T: Send + 'static,
    F: for<'a, 'c> Fn(&'a mut Tx<'c>) -> BoxFuture<'a, Result<(T, bool), StoreError>>
        + Send
        + Sync
        + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |tx: &mut Tx<'_>| {
        let f = f.clone();
        Box::pin(async move {
            let (v, keep) = f(tx).await?;
            Ok((Box::new(v) as Erased, keep))
        })
    })
}

/// Runs a unit in a savepoint of the caller's open transaction.
pub(crate) async fn in_savepoint(
    tx: &mut Tx<'_>,
    f: &UnitFn,
) -> Result<(Erased, bool), StoreError> {
    tx.control("SAVEPOINT unit").await?;
    match f(tx).await {
        Ok((v, true)) => {
            tx.control("RELEASE SAVEPOINT unit").await?;
            Ok((v, true))
        }
        Ok((v, false)) => {
            tx.control("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit")
                .await?;
            Ok((v, false))
        }
        Err(e) => {
            tx.control("ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit")
                .await?;
            Err(e)
        }
    }
}

/// Runs a unit in a transaction of its own.
pub(crate) async fn alone(
    tx: &mut Tx<'_>,
    begin: &str,
    f: &UnitFn,
) -> Result<(Erased, bool), StoreError> {
    tx.control(begin).await?;
    match f(tx).await {
        Ok((v, keep)) => {
            tx.control(if keep { "COMMIT" } else { "ROLLBACK" }).await?;
            Ok((v, keep))
        }
        Err(e) => {
            let _ = tx.control("ROLLBACK").await;
            Err(e)
        }
    }
}
