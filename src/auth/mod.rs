//! Clerk session tokens: where they come from (header, cookies), and how they are verified
//! (RS256 against a cached key store, with Clerk's claim checks).

pub mod claims;
pub mod cookies;
pub mod handshake;
pub mod keys;
pub mod verify;

pub use claims::Session;
pub use cookies::{cookie, cookie_suffix, now_secs, token_from_parts};
pub use keys::KeyStore;
pub use verify::{AuthError, TokenVerifier};
