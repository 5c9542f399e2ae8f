//! Demo mode's API keys (README, "API keys"): what Clerk does in production — make a key (its
//! secret shown once), list, revoke, and answer `POST /v1/api_keys/verify` — done locally, so a
//! demo key is verified through the very request and cache a Clerk key goes through. Only a
//! SHA-256 of each secret is stored.

use std::{collections::HashMap, sync::Mutex};

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::{self, api_keys::KeyRow, now_ms, Db, DbError};

/// Keys one subject may hold (a demo, not a key store).
pub const MAX_KEYS: usize = 20;

pub struct DemoKeys {
    db: Db,
    /// The Bearer the app's own verification requests carry (random per process).
    pub bapi_secret: SecretString,
    /// Secrets made and not yet shown, by key id: shown once, to their subject.
    fresh: Mutex<HashMap<String, (String, String)>>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key's name is 1 to 60 printable characters")]
    Name,
    #[error("at most {MAX_KEYS} keys: revoke one first")]
    TooMany,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl DemoKeys {
    pub fn new(db: Db) -> DemoKeys {
        DemoKeys {
            db,
            bapi_secret: SecretString::from(format!("sk_test_demo_{}", random_hex(24))),
            fresh: Mutex::new(HashMap::new()),
        }
    }

    /// Makes a key for `subject` (`user_…`); its secret is kept until shown once.
    pub async fn create(&self, subject: &str, name: &str) -> Result<KeyRow, KeyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(KeyError::Name);
        }
        let live = db::api_keys::for_subject(&self.db.pool, subject)
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .count();
        if live >= MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        let secret = format!("ak_demo_{}", random_hex(24));
        let key = KeyRow {
            id: format!("ak_id_{}", random_hex(8)),
            subject: subject.to_string(),
            name: name.to_string(),
            hint: format!("ak_demo_…{}", &secret[secret.len() - 4..]),
            created_at: now_ms(),
            revoked_at: None,
        };
        db::api_keys::insert(&self.db.pool, &key, &hash(&secret)).await?;
        self.fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id.clone(), (subject.to_string(), secret));
        Ok(key)
    }

    /// The secret of key `id`, once, to its own subject.
    pub fn take_fresh(&self, id: &str, subject: &str) -> Option<String> {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        match fresh.get(id) {
            Some((owner, _)) if owner == subject => fresh.remove(id).map(|(_, s)| s),
            _ => None,
        }
    }

    pub async fn list(&self, subject: &str) -> Result<Vec<KeyRow>, DbError> {
        db::api_keys::for_subject(&self.db.pool, subject).await
    }

    pub async fn revoke(&self, id: &str, subject: &str) -> Result<bool, DbError> {
        db::api_keys::revoke(&self.db.pool, id, subject, now_ms()).await
    }

    /// Whether `bearer` is this process's verification secret (constant time).
    pub fn is_backend(&self, bearer: &str) -> bool {
        let a = Sha256::digest(bearer.as_bytes());
        let b = Sha256::digest(self.bapi_secret.expose_secret().as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// Clerk's answer to `POST /v1/api_keys/verify` for `secret`: the key, or `None` (Clerk's
    /// `404`).
    pub async fn verify(&self, secret: &str) -> Result<Option<Value>, DbError> {
        let Some(k) = db::api_keys::by_hash(&self.db.pool, &hash(secret)).await? else {
            return Ok(None);
        };
        Ok(Some(json!({
            "object": "api_key",
            "id": k.id,
            "type": "api_key",
            "subject": k.subject,
            "name": k.name,
            "claims": null,
            "scopes": [],
            "revoked": k.revoked_at.is_some(),
            "revocation_reason": null,
            "expired": false,
            "expiration": null,
            "created_by": k.subject,
            "created_at": k.created_at,
            "updated_at": k.revoked_at.unwrap_or(k.created_at),
        })))
    }
}
