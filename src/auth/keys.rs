//! Where verification keys come from: a PEM (networkless), a fixed set (demo issuer), or a
//! JWKS endpoint, cached. An unknown `kid` triggers at most one refetch per cooldown (never less
//! than [`MIN_COOLDOWN`]), since keys rotate rarely and attackers can send random kids; a set
//! older than [`MAX_AGE`] is refetched on its next use. A successful fetch *replaces* the set,
//! so a key Clerk withdrew stops verifying at the next fetch; a failed or empty fetch keeps the
//! known keys (an outage must not sign everyone out).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use jsonwebtoken::{jwk::JwkSet, DecodingKey};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

pub enum KeySource {
    /// One PEM key, used whatever the token's `kid` (Clerk's networkless verification).
    Pem(Arc<DecodingKey>),
    /// A fixed set of keys by `kid`.
    Static,
    /// JWKS endpoints tried in order, each with an optional bearer secret.
    Jwks(Vec<(String, Option<SecretString>)>),
}

/// The shortest refetch cooldown, whatever `JWKS_REFETCH_COOLDOWN_SECS` says: random `kid`s
/// must not turn every request into a fetch.
pub const MIN_COOLDOWN: Duration = Duration::from_secs(5);
/// How long a fetched set is used before the next use refetches it (Clerk's SDK: one hour).
pub const MAX_AGE: Duration = Duration::from_secs(3600);

pub struct KeyStore {
    source: KeySource,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    cooldown: Duration,
    http: reqwest::Client,
    /// Bumped whenever the set is replaced, so tokens verified under the old set are checked
    /// again (a withdrawn key's tokens must not live on in the verified-token cache).
    generation: AtomicU64,
}

impl KeyStore {
    /// Where this instance's session-token keys come from (README, "Security model"): the demo
    /// issuer's own keys (`demo_keys`, demo mode), else `CLERK_JWT_KEY`, else the JWKS
    /// (`CLERK_JWKS_URL`, or the Frontend API's, then the Backend API's with the secret key).
    pub fn for_config(
        config: &crate::config::Config,
        demo_keys: Option<HashMap<String, DecodingKey>>,
        http: reqwest::Client,
    ) -> anyhow::Result<KeyStore> {
        use anyhow::Context;
        if let Some(keys) = demo_keys {
            return Ok(KeyStore::fixed(keys));
        }
        if let Some(pem) = &config.tokens.jwt_key_pem {
            return KeyStore::pem(pem).context("CLERK_JWT_KEY");
        }
        let clerk = config
            .clerk()
            .context("no Clerk keys and no demo issuer: nothing to verify tokens with")?;
        let urls = match &config.tokens.jwks_url {
            Some(u) => vec![(u.clone(), None)],
            None => {
                let mut urls = vec![(clerk.jwks_url(), None)];
                if let Some(sk) = &clerk.secret_key {
                    urls.push((format!("{}/v1/jwks", clerk.api_url), Some(sk.clone())));
                }
                urls
            }
        };
        Ok(KeyStore::jwks(urls, config.tokens.jwks_cooldown, http))
    }

    pub fn pem(pem: &str) -> anyhow::Result<KeyStore> {
        let key = DecodingKey::from_rsa_pem(pem.as_bytes())?;
        Ok(Self::with(
            KeySource::Pem(Arc::new(key)),
            HashMap::new(),
            Duration::ZERO,
            reqwest::Client::new(),
        ))
    }

    pub fn fixed(keys: HashMap<String, DecodingKey>) -> KeyStore {
        let keys = keys.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Self::with(
            KeySource::Static,
            keys,
            Duration::ZERO,
            reqwest::Client::new(),
        )
    }

    pub fn jwks(
        urls: Vec<(String, Option<SecretString>)>,
        cooldown: Duration,
        http: reqwest::Client,
    ) -> KeyStore {
        Self::with(
            KeySource::Jwks(urls),
            HashMap::new(),
            cooldown.max(MIN_COOLDOWN),
            http,
        )
    }

    fn with(
        source: KeySource,
        keys: HashMap<String, Arc<DecodingKey>>,
        cooldown: Duration,
        http: reqwest::Client,
    ) -> KeyStore {
        KeyStore {
            source,
            keys: RwLock::new(keys),
            last_fetch: Mutex::new(None),
            cooldown,
            http,
            generation: AtomicU64::new(0),
        }
    }

    /// Changes whenever the key set is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The key for `kid`, or `None` when it is unknown even after a permitted refetch.
    pub async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        if let KeySource::Pem(key) = &self.source {
            return Some(key.clone());
        }
        let KeySource::Jwks(urls) = &self.source else {
            return self.keys.read().await.get(kid).cloned();
        };
        let fresh = |last: &Option<Instant>| last.is_some_and(|t| t.elapsed() < MAX_AGE);
        if let Some(k) = self.keys.read().await.get(kid) {
            // Without waiting on the fetch lock: an ongoing fetch answers for itself.
            if self.last_fetch.try_lock().map_or(true, |l| fresh(&l)) {
                return Some(k.clone());
            }
        }
        // One fetch at a time; whoever waited re-checks the cache first.
        let mut last = self.last_fetch.lock().await;
        let known = self.keys.read().await.get(kid).cloned();
        if known.is_some() && fresh(&last) {
            return known;
        }
        let due = known.is_some() || last.is_none_or(|t| t.elapsed() >= self.cooldown);
        if !due {
            return None;
        }
        *last = Some(Instant::now());
        match self.fetch(urls).await {
            Some(fresh) if !fresh.is_empty() => {
                info!(keys = fresh.len(), "JWKS refreshed");
                let mut keys = self.keys.write().await;
                // Replaced, not merged: a key that left the JWKS is no longer trusted. During a
                // rotation Clerk lists both keys, so tokens signed just before it still verify.
                *keys = fresh;
                self.generation.fetch_add(1, Ordering::AcqRel);
                keys.get(kid).cloned()
            }
            Some(_) => {
                warn!("JWKS fetch returned no usable keys; keeping the known ones");
                known
            }
            None => known,
        }
    }

    async fn fetch(
        &self,
        urls: &[(String, Option<SecretString>)],
    ) -> Option<HashMap<String, Arc<DecodingKey>>> {
        for (url, bearer) in urls {
            let mut req = self.http.get(url).timeout(Duration::from_secs(5));
            if let Some(secret) = bearer {
                req = req.bearer_auth(secret.expose_secret());
            }
            let set = match req.send().await.and_then(|r| r.error_for_status()) {
                Ok(resp) => resp.json::<JwkSet>().await,
                Err(e) => Err(e),
            };
            match set {
                Ok(set) => {
                    let keys = set
                        .keys
                        .iter()
                        .filter_map(|jwk| {
                            let kid = jwk.common.key_id.clone()?;
                            DecodingKey::from_jwk(jwk).ok().map(|k| (kid, Arc::new(k)))
                        })
                        .collect();
                    return Some(keys);
                }
                Err(e) => warn!(url = %url, error = %e.without_url(), "JWKS fetch failed"),
            }
        }
        None
    }
}
