//! Clerk session tokens: where they come from (header, cookies), and how they are verified
//! (RS256 against a cached key store, with Clerk's claim checks).

pub mod api_keys;
pub mod caller;
pub mod claims;
pub mod cookies;
pub mod handshake;
pub mod keys;
pub mod sessions;
pub mod verify;

pub use crate::billing::api_key::KeyVerdict;
pub use api_keys::ApiKeys;
pub use caller::Caller;
pub use claims::Session;
pub use cookies::{bearer, cookie, cookie_suffix, now_secs, session_token};
pub use keys::KeyStore;
pub use sessions::Sessions;
pub use verify::{AuthError, TokenVerifier};
