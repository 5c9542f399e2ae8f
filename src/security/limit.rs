//! Who the client is (the socket's address, or a trusted proxy's `X-Forwarded-For`), and a
//! per-address token bucket for failed attempts.
//!
//! Only failures are counted (bad webhook signatures, forged or malformed session tokens) and
//! demo sign-ins; valid traffic never drains a bucket. An address whose bucket is empty is
//! answered `429` for those kinds of request *before* they are evaluated, so guessing gains
//! nothing from speed. IPv6 addresses share a bucket per /64, the block one subscriber holds.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Instant,
};

use axum::http::HeaderMap;

/// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// `10.0.0.1, 10.1.0.0/16, ::1`; an entry that is neither an address nor a range is
    /// returned as the error.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| entry.to_string())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| entry.to_string())?,
            };
            out.push((canonical(addr), bits));
        }
        Ok(TrustedProxies(out))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, bits)| in_range(ip, *net, *bits))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            (!0u128 << (width - u32::from(bits))) & (!0u128 >> (128 - width))
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(32);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(n)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(128);
            (u128::from(a) & m) == (u128::from(n) & m)
        }
        _ => false,
    }
}

/// The client's address: the socket's peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` hops are read from the right (the nearest first) and the first hop that is
/// not itself a trusted proxy is the client. Hops further left were written by the client and
/// are never believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = canonical(ip);
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

/// The bucket an address draws from: itself, or its /64 for IPv6.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (!0u128 << 64))),
        v4 => v4,
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Addresses tracked at most; past that, buckets that have refilled are forgotten first.
const MAX_TRACKED: usize = 100_000;

pub struct RateLimiter {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// How many buckets exist: the check is free while nobody has failed.
    tracked: AtomicUsize,
}

impl RateLimiter {
    /// `per_minute` failures per address per minute, with a burst of half that; 0 disables.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_minute) / 60.0,
            burst: (f64::from(per_minute) / 2.0).max(1.0),
            buckets: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.rate).min(self.burst)
    }

    /// `Some(seconds to wait)` when `ip` has no attempts left.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        self.blocked_at(ip, Instant::now())
    }

    pub fn blocked_at(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        if !self.enabled() || self.tracked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let tokens = self.refilled(*buckets.get(&bucket_key(ip))?, now);
        // Less a hair, so that float noise in `tokens` cannot add a second.
        (tokens < 1.0).then(|| ((1.0 - tokens) / self.rate - 1e-6).ceil().max(1.0) as u64)
    }

    /// One more attempt from `ip`: refused with the seconds to wait when it has none left,
    /// else counted.
    pub fn charge(&self, ip: IpAddr) -> Result<(), u64> {
        if let Some(retry) = self.blocked(ip) {
            return Err(retry);
        }
        self.count(ip);
        Ok(())
    }

    /// Counts one failed attempt (or one demo sign-in) against `ip`.
    pub fn count(&self, ip: IpAddr) {
        self.count_at(ip, Instant::now())
    }

    pub fn count_at(&self, ip: IpAddr, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let key = bucket_key(ip);
        let tokens = buckets
            .get(&key)
            .map_or(self.burst, |b| self.refilled(*b, now));
        buckets.insert(
            key,
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                at: now,
            },
        );
        self.tracked.store(buckets.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_past_the_burst_block_until_the_bucket_refills() {
        let l = RateLimiter::new(120); // burst 60, 2 per second
        let t0 = Instant::now();
        let a = ip("203.0.113.7");
        for i in 0..60 {
            assert_eq!(l.blocked_at(a, t0), None, "attempt {i}");
            l.count_at(a, t0);
        }
        assert_eq!(
            l.blocked_at(a, t0),
            Some(1),
            "the 61st waits half a second, said as 1"
        );
        assert_eq!(
            l.blocked_at(ip("203.0.113.8"), t0),
            None,
            "other addresses are not"
        );
        assert_eq!(l.blocked_at(a, t0 + Duration::from_millis(500)), None);
        l.count_at(a, t0 + Duration::from_millis(500));
        assert!(l.blocked_at(a, t0 + Duration::from_millis(500)).is_some());
    }

    #[test]
    fn retry_after_says_how_long_one_attempt_takes_to_come_back() {
        let l = RateLimiter::new(6); // burst 3, one per 10 s
        let t0 = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..3 {
            l.count_at(a, t0);
        }
        assert_eq!(l.blocked_at(a, t0), Some(10));
        assert_eq!(l.blocked_at(a, t0 + Duration::from_secs(4)), Some(6));
        assert_eq!(l.blocked_at(a, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn a_limit_of_zero_never_blocks() {
        let l = RateLimiter::new(0);
        let a = ip("192.0.2.1");
        for _ in 0..1000 {
            l.count(a);
        }
        assert_eq!(l.blocked(a), None);
    }

    #[test]
    fn an_ipv6_subscriber_cannot_dodge_the_limit_by_changing_addresses_in_its_64() {
        let l = RateLimiter::new(2); // burst 1
        let t0 = Instant::now();
        l.count_at(ip("2001:db8:1:2::1"), t0);
        assert!(l.blocked_at(ip("2001:db8:1:2:ffff::9"), t0).is_some());
        assert!(l.blocked_at(ip("2001:db8:1:3::1"), t0).is_none());
        l.count_at(ip("::ffff:192.0.2.9"), t0);
        assert!(
            l.blocked_at(ip("192.0.2.9"), t0).is_some(),
            "mapped v4 is v4"
        );
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let proxy = TrustedProxies::parse("10.0.0.1, 10.1.0.0/16").unwrap();
        let h = xff(&["198.51.100.9"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &none), ip("10.0.0.1"));
        assert_eq!(client_ip(ip("203.0.113.5"), &h, &proxy), ip("203.0.113.5"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxy), ip("198.51.100.9"));
        // The client's own claims (left of the nearest untrusted hop) are ignored.
        let h = xff(&["1.1.1.1, 198.51.100.9", "10.1.4.4"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxy), ip("198.51.100.9"));
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        let h = xff(&["198.51.100.9, garbage"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxy), ip("10.0.0.1"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &proxy),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn proxy_lists_take_addresses_and_ranges_only() {
        assert!(TrustedProxies::parse("10.0.0.0/8, ::1, fd00::/8").is_ok());
        for bad in [
            "proxy.internal",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/x",
            "10.0.0",
        ] {
            assert_eq!(TrustedProxies::parse(bad), Err(bad.to_string()));
        }
        let p = TrustedProxies::parse("10.1.0.0/16, 0.0.0.0/0").unwrap();
        assert!(p.contains(ip("8.8.8.8")), "/0 is everything");
        let p = TrustedProxies::parse("10.1.0.0/16").unwrap();
        assert!(p.contains(ip("10.1.255.1")) && !p.contains(ip("10.2.0.1")));
        assert!(!p.contains(ip("::ffff:10.2.0.1")) && p.contains(ip("::ffff:10.1.0.1")));
    }
}
