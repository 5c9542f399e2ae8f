//! Cache invalidation across instances on PostgreSQL (README, "Several instances"): a transaction that changes a
//! payer's subscription state announces the payer on the channel `plangate_payers`
//! (`pg_notify`, delivered when the transaction commits, never when it rolls back), and every
//! instance listens on its own connection. SQLite has one instance per file and needs none.
//!
//! The payload is the payers' keys, `user:user_123 org:org_456`, or `*` (every payer) when they
//! would not fit in a notification or a key cannot be written unambiguously.

use std::collections::HashSet;

use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    AnyConnection, Executor,
};

use super::{Db, DbError};
use crate::billing::Payer;

pub const CHANNEL: &str = "plangate_payers";

/// PostgreSQL takes payloads below 8000 bytes; this leaves room.
const MAX_PAYLOAD: usize = 7000;

/// What a notification says to drop from the payer cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Payers(Vec<Payer>),
    All,
}

/// The payload announcing `payers`.
pub fn encode(payers: impl IntoIterator<Item = Payer>) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    for payer in payers {
        let (kind, id) = (payer.kind, payer.id.as_str());
        let clean =
            !id.is_empty() && !id.contains([' ', ':', '*']) && !id.contains(char::is_whitespace);
        if !clean {
            return "*".into();
        }
        if seen.contains(&payer) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(kind.as_str());
        out.push(':');
        out.push_str(id);
        if out.len() > MAX_PAYLOAD {
            return "*".into();
        }
        seen.insert(payer);
    }
    out
}

/// Reads a payload; anything it cannot read means every payer (dropping too much is safe,
/// keeping a changed payer is not).
pub fn decode(payload: &str) -> Changed {
    match payload.split(' ').map(Payer::parse).collect() {
        Ok(payers) => Changed::Payers(payers),
        Err(_) => Changed::All,
    }
}

/// Announces `payload` from inside the caller's transaction (PostgreSQL only).
pub async fn announce(conn: &mut AnyConnection, payload: &str) -> Result<(), DbError> {
    // `pg_notify` returns `void`, a type the `Any` driver cannot read: select a constant from it.
    sqlx::query("select 1 from pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// The listening connection, outside the pool.
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// Connects and listens; `None` on SQLite.
    pub async fn connect(db: &Db) -> Result<Option<Listener>, DbError> {
        if db.engine != super::Engine::Postgres {
            return Ok(None);
        }
        let options = PgConnectOptions::try_from(&db.options)?;
        // A pool of one, so that the listener's connection is its own.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with(options);
        let mut inner = PgListener::connect_with(&pool).await?;
        inner.ignore_pool_close_event(true);
        inner.listen(CHANNEL).await?;
        Ok(Some(Listener { inner }))
    }

    /// A round trip on the listening connection. When it returns, every notification committed
    /// before it was sent has arrived (PostgreSQL delivers them before the query's answer), and
    /// `take` returns them.
    pub async fn ping(&mut self) -> Result<(), DbError> {
        (&mut self.inner).execute("select 1").await?;
        Ok(())
    }

    /// The notifications that have arrived, in order.
    pub fn take(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.inner.next_buffered())
            .map(|n| n.payload().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payers_are_announced_once_each() {
        let p = encode([
            Payer::user("user_1"),
            Payer::org("org_2"),
            Payer::user("user_1"),
        ]);
        assert_eq!(p, "user:user_1 org:org_2");
        assert_eq!(
            decode(&p),
            Changed::Payers(vec![Payer::user("user_1"), Payer::org("org_2")])
        );
    }

    #[test]
    fn what_cannot_be_written_plainly_or_read_back_means_every_payer() {
        for id in ["", "a b", "a:b", "*", "a\tb", "a\nb"] {
            assert_eq!(encode([Payer::user(id)]), "*", "{id:?}");
        }
        // Up to the limit a payload names its payers; one byte more and it names all.
        let fits = "u".repeat(MAX_PAYLOAD - "user:".len());
        assert_eq!(encode([Payer::user(fits.as_str())]).len(), MAX_PAYLOAD);
        let over = format!("{fits}u");
        assert_eq!(encode([Payer::user(over.as_str())]), "*");
        let many: Vec<String> = (0..1000).map(|i| format!("user_{i:04}")).collect();
        assert_eq!(encode(many.iter().map(|s| Payer::user(s.as_str()))), "*");
        for payload in [
            "*",
            "",
            "user:",
            "team:t_1",
            "user_1",
            "user:a  org:b",
            "org:",
        ] {
            assert_eq!(decode(payload), Changed::All, "{payload:?}");
        }
    }

    proptest! {
        /// Whatever ids a delivery carries, the listener drops at least those payers.
        #[test]
        fn a_decoded_announcement_covers_every_announced_payer(
            payers in proptest::collection::vec((any::<bool>(), ".{0,12}"), 1..20)
        ) {
            let payers: Vec<Payer> = payers
                .into_iter()
                .map(|(org, id)| if org { Payer::org(id) } else { Payer::user(id) })
                .collect();
            let payload = encode(payers.iter().cloned());
            prop_assert!(payload.len() < 8000);
            match decode(&payload) {
                Changed::All => {}
                Changed::Payers(got) => {
                    for p in &payers {
                        prop_assert!(got.contains(p), "{p:?} missing from {got:?}");
                    }
                }
            }
        }
    }
}
