//! Security rules that are not HTTP plumbing: the Content-Security-Policy (`csp`), the
//! per-address limit on failed attempts and the trusted-proxy rule for client addresses
//! (`limit`). The request guard in `http` applies them (which token failures count as
//! forgeries is `auth::AuthError::is_forgery`).

pub mod csp;
pub mod limit;

pub use limit::{client_ip, RateLimiter, TrustedProxies};
