//! Clerk session tokens: where they come from (header, cookies), how they are verified (RS256
//! against a cached key store, with Clerk's claim checks), and the axum extractors built on it.

pub mod claims;
pub mod extract;
pub mod keys;
pub mod verify;

pub use claims::Session;
pub use extract::{token_from_parts, AuthUser, MaybeAuthUser};
pub use keys::KeyStore;
pub use verify::{AuthError, TokenVerifier};
