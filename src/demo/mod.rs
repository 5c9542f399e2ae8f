//! Demo mode: the app acts as its own Clerk. A local RSA key signs Clerk-shaped v2
//! session tokens; the pricing buttons send Svix-signed Clerk-shaped webhooks over HTTP to the
//! app's own `/api/webhooks/clerk`, so demo traffic takes exactly the production path.
//! Never active in production (config refuses it).

pub mod api_keys;
pub mod backend;
pub mod delivery;
pub mod events;
pub mod lifecycle;

use std::{collections::HashMap, path::Path};

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::{
    pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey},
    pkcs8::{EncodePublicKey, LineEnding},
    traits::PublicKeyParts,
    RsaPrivateKey,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_TTL_SECS: i64 = 7 * 86_400;
pub const CLIENT_COOKIE: &str = "__demo_client";
const CLIENT_AUD: &str = "plangate-demo-client";

/// An RS256 key that signs Clerk-shaped tokens: the demo issuer's, and the keys the test and
/// benchmark kits generate (the app checks those through `CLERK_JWT_KEY` or a JWKS, as Clerk's).
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key as Clerk's JWKS lists it, and as PEM (`CLERK_JWT_KEY`).
    pub jwk: Value,
    pub public_pem: String,
}

impl SigningKey {
    /// A fresh 2048-bit key.
    pub fn generate(kid: &str) -> anyhow::Result<SigningKey> {
        let key =
            RsaPrivateKey::new(&mut rand::thread_rng(), 2048).context("generating an RSA key")?;
        SigningKey::from_key(&key, kid)
    }

    pub fn from_key(key: &RsaPrivateKey, kid: &str) -> anyhow::Result<SigningKey> {
        let public = key.to_public_key();
        let n = b64url(&public.n().to_bytes_be());
        let e = b64url(&public.e().to_bytes_be());
        Ok(SigningKey {
            encoding: EncodingKey::from_rsa_pem(key.to_pkcs1_pem(LineEnding::LF)?.as_bytes())?,
            decoding: DecodingKey::from_rsa_components(&n, &e)?,
            jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
            public_pem: public.to_public_key_pem(LineEnding::LF)?,
            kid: kid.into(),
        })
    }

    /// `claims` as a JWT signed with this key, its `kid` in the header (as Clerk's tokens).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// `claims` signed under a header of the caller's own (e.g. with Clerk's `cat`): RS256 over
    /// `base64url(header).base64url(claims)`, as any JWT.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, Algorithm::RS256)?;
        Ok(format!("{message}.{signature}"))
    }
}

/// A demo client (Clerk's long-lived client, on the demo issuer's side): who, and when they
/// signed in (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoClient {
    pub user_id: String,
    pub email: String,
    pub signed_in_at: i64,
}

pub struct DemoIssuer {
    key: SigningKey,
    pub jwks: Value,
    pub issuer: String,
    pub webhook_secret: SecretString,
    session_ttl_secs: i64,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Loads `data/demo-key.pem`, or generates it on first start.
fn load_or_create_key(dir: &Path) -> anyhow::Result<RsaPrivateKey> {
    let path = dir.join("demo-key.pem");
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return RsaPrivateKey::from_pkcs1_pem(&pem).context("reading data/demo-key.pem");
    }
    crate::private_files::private_dir(dir).context("creating the data folder")?;
    let key =
        RsaPrivateKey::new(&mut rand::thread_rng(), 2048).context("generating the demo key")?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .context("encoding the demo key")?;
    crate::private_files::write_private(&path, pem.as_bytes())
        .context("writing data/demo-key.pem")?;
    Ok(key)
}

fn load_or_create_secret(dir: &Path) -> anyhow::Result<SecretString> {
    let path = dir.join("demo-webhook-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(s.trim().to_string()));
    }
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    crate::private_files::write_private(&path, secret.as_bytes())
        .context("writing data/demo-webhook-secret")?;
    Ok(SecretString::from(secret))
}

impl DemoIssuer {
    /// The demo issuer when the configuration is demo mode (no Clerk keys), else `None`.
    pub fn for_config(
        config: &crate::config::Config,
    ) -> anyhow::Result<Option<std::sync::Arc<Self>>> {
        match &config.identity {
            crate::config::Identity::Demo {
                issuer,
                session_ttl_secs,
                ..
            } => Ok(Some(std::sync::Arc::new(Self::load(
                &config.data_dir,
                issuer.clone(),
                config.webhook_secrets.first(),
                *session_ttl_secs,
            )?))),
            crate::config::Identity::Clerk(_) => Ok(None),
        }
    }

    pub fn load(
        data_dir: &Path,
        issuer: String,
        configured_secret: Option<&SecretString>,
        session_ttl_secs: i64,
    ) -> anyhow::Result<Self> {
        let key = load_or_create_key(data_dir)?;
        let n = b64url(&key.to_public_key().n().to_bytes_be());
        let kid = format!(
            "ins_demo_{}",
            &hex::encode(Sha256::digest(n.as_bytes()))[..16]
        );
        let key = SigningKey::from_key(&key, &kid)?;
        let webhook_secret = match configured_secret {
            Some(s) => s.clone(),
            None => load_or_create_secret(data_dir)?,
        };
        Ok(DemoIssuer {
            jwks: json!({ "keys": [key.jwk.clone()] }),
            key,
            issuer,
            webhook_secret,
            session_ttl_secs,
        })
    }

    /// The key set the token verifier uses: exactly this issuer's key.
    pub fn verification_keys(&self) -> HashMap<String, DecodingKey> {
        HashMap::from([(self.key.kid.clone(), self.key.decoding.clone())])
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        self.key.sign(claims)
    }

    /// How long its session tokens live (60 s, like Clerk's, unless a test shortens it).
    pub fn session_ttl_secs(&self) -> i64 {
        self.session_ttl_secs
    }

    /// A handshake token, as Clerk's Frontend API returns from `/v1/client/handshake`: the
    /// `Set-Cookie` values to set, signed with the instance key, short-lived.
    pub fn mint_handshake(&self, cookies: &[String], now_secs: i64) -> anyhow::Result<String> {
        self.sign(&json!({
            "handshake": cookies,
            "iat": now_secs,
            "exp": now_secs + 60,
        }))
    }

    /// A Clerk-shaped v2 session token, 60 s life like Clerk's. `signed_in_secs`: when the
    /// client signed in (its first factor), stamped as Clerk does into `fva` (minutes since,
    /// no second factor); `None` leaves `fva` out.
    pub fn mint_session(
        &self,
        user_id: &str,
        pla: &str,
        fea: &str,
        now_secs: i64,
        signed_in_secs: Option<i64>,
    ) -> anyhow::Result<String> {
        let mut claims = json!({
            "azp": self.issuer,
            "exp": now_secs + self.session_ttl_secs,
            "fea": fea,
            "iat": now_secs,
            "iss": self.issuer,
            "nbf": now_secs - 10,
            "pla": pla,
            "sid": format!("sess_{}", user_id.trim_start_matches("user_")),
            "sts": "active",
            "sub": user_id,
            "v": 2,
        });
        if let Some(at) = signed_in_secs {
            claims["fva"] = json!([(now_secs - at).max(0) / 60, -1]);
        }
        self.sign(&claims)
    }

    /// The long-lived "client" cookie that lets the session be refreshed (Clerk's `__client`).
    pub fn mint_client(&self, user_id: &str, email: &str, now_secs: i64) -> anyhow::Result<String> {
        self.sign(&json!({
            "aud": CLIENT_AUD,
            "exp": now_secs + CLIENT_TTL_SECS,
            "iat": now_secs,
            "iss": self.issuer,
            "sub": user_id,
            "email": email,
        }))
    }

    /// Verifies the client cookie.
    pub fn verify_client(&self, token: &str) -> Option<DemoClient> {
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&[CLIENT_AUD]);
        v.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<Value>(token, &self.key.decoding, &v).ok()?;
        Some(DemoClient {
            user_id: data.claims.get("sub")?.as_str()?.to_string(),
            email: data.claims.get("email")?.as_str()?.to_string(),
            signed_in_at: data.claims.get("iat")?.as_i64()?,
        })
    }

    pub fn secret(&self) -> &str {
        self.webhook_secret.expose_secret()
    }
}

/// The prefix of every demo user's id (`user_demo_<name>`).
pub const USER_PREFIX: &str = "user_demo_";

/// The mail address of a demo user, `<name>@demo.plangate.test`; `None` for any other id.
pub fn email_of(user_id: &str) -> Option<String> {
    let name = user_id
        .strip_prefix(USER_PREFIX)
        .filter(|n| !n.is_empty())?;
    Some(format!("{name}@demo.plangate.test"))
}
