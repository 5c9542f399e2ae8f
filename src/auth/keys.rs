//! Where verification keys come from: a PEM (networkless), a fixed set (demo issuer), or a
//! JWKS endpoint, cached. An unknown `kid` triggers at most one refetch per cooldown, since keys
//! rotate rarely and attackers can send random kids; a JWKS outage keeps the known keys.

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

pub struct KeyStore {
    source: KeySource,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    cooldown: Duration,
    http: reqwest::Client,
    fetches: AtomicU64,
}

impl KeyStore {
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
        Self::with(KeySource::Jwks(urls), HashMap::new(), cooldown, http)
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
            fetches: AtomicU64::new(0),
        }
    }

    /// How many JWKS fetches were attempted (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid`, or `None` when it is unknown even after a permitted refetch.
    pub async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        if let KeySource::Pem(key) = &self.source {
            return Some(key.clone());
        }
        if let Some(k) = self.keys.read().await.get(kid) {
            return Some(k.clone());
        }
        let KeySource::Jwks(urls) = &self.source else {
            return None;
        };
        // One fetch at a time; whoever waited re-checks the cache first.
        let mut last = self.last_fetch.lock().await;
        if let Some(k) = self.keys.read().await.get(kid) {
            return Some(k.clone());
        }
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch(urls).await {
            Some(fresh) => {
                info!(keys = fresh.len(), "JWKS refreshed");
                let mut keys = self.keys.write().await;
                // Keep keys we knew: a token signed just before a rotation stays valid.
                keys.extend(fresh);
                keys.get(kid).cloned()
            }
            None => None,
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
