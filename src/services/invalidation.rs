//! Follows the other instances' commits on PostgreSQL (README, "Several instances"): listens on
//! `db::notify::CHANNEL`, drops the announced payers from the entitlement cache, and every
//! `PING_EVERY` proves the connection current with a round trip, which lets the cache answer for
//! `entitlements::STALENESS_BOUND` more. A lost or silent connection clears the whole cache; until a new
//! one listens, every request reads the database. SQLite needs none of this.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    db::{
        notify::{decode, Listener},
        Db,
    },
    metrics::Metrics,
    services::Entitlements,
};

/// How often the listening connection is read and proved current: an announcement takes at
/// most this long (plus a round trip) to reach the cache.
pub const PING_EVERY: Duration = Duration::from_millis(50);
/// A round trip slower than this counts as a lost connection.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Runs until the process ends; returns at once on SQLite.
pub async fn follow(db: Db, entitlements: Arc<Entitlements>, metrics: Arc<Metrics>) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        match Listener::connect(&db).await {
            Ok(None) => return,
            Ok(Some(mut listener)) => {
                // Whatever was cached before the LISTEN took effect may have missed a change.
                entitlements.invalidate();
                metrics.invalidation_listening.set(1);
                tracing::info!("listening for other instances' changes");
                backoff = BACKOFF_FIRST;
                let reason = loop {
                    let sent = Instant::now();
                    match tokio::time::timeout(PING_TIMEOUT, listener.ping()).await {
                        Ok(Ok(())) => {
                            for payload in listener.take() {
                                entitlements.forget(&decode(&payload));
                            }
                            entitlements.confirm(sent);
                        }
                        Ok(Err(e)) => break e.to_string(),
                        Err(_) => break format!("no answer within {PING_TIMEOUT:?}"),
                    }
                    tokio::time::sleep(PING_EVERY).await;
                };
                metrics.invalidation_listening.set(0);
                entitlements.invalidate();
                tracing::warn!(error = %reason, "lost the listening connection; serving uncached until it is back");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot listen for other instances' changes; serving uncached");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
