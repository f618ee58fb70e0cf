//! Console sessions and the sign-in throttle, both in the daemon's memory.
//!
//! A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie,
//! mapped here to the caller its token named and a CSRF token of its own.
//! Keeping sessions in memory keeps the token out of the browser after
//! sign-in and needs no table; the price is that a restart signs everyone
//! out and that several daemons behind one address need sticky routing.

use crate::admin::auth::Caller;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The session cookie's name.
pub const COOKIE: &str = "hoursync_session";

/// Sessions kept at most: a flood of sign-ins can not grow memory without
/// bound; the least recently used session goes first.
const MAX_SESSIONS: usize = 10_000;

/// 256 random bits, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// Every POST of this session carries it.
    pub csrf: String,
    last_seen_ms: i64,
}

/// The live sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle_ms: i64,
}

impl Sessions {
    pub fn new(idle: std::time::Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle_ms: i64::try_from(idle.as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `caller`; its id for the cookie.
    pub fn create(&self, caller: Caller, now_ms: i64) -> String {
        let id = random_token();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| now_ms - s.last_seen_ms < self.idle_ms);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen_ms)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                caller,
                csrf: random_token(),
                last_seen_ms: now_ms,
            },
        );
        id
    }

    /// The session `id`, if it is live, marked as used now; an expired one
    /// is dropped.
    pub fn touch(&self, id: &str, now_ms: i64) -> Option<Session> {
        let mut map = self.lock();
        let session = map.get_mut(id)?;
        if now_ms - session.last_seen_ms >= self.idle_ms {
            map.remove(id);
            return None;
        }
        session.last_seen_ms = now_ms;
        Some(session.clone())
    }

    /// Signs a session out.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Signs out every session whose caller `keep` refuses (tokens removed
    /// from the file on SIGHUP).
    pub fn retain(&self, keep: impl Fn(&Caller) -> bool) {
        self.lock().retain(|_, s| keep(&s.caller));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failed sign-ins per client address: after [`FREE_FAILURES`] the address
/// must wait, twice as long after each further failure (up to
/// [`MAX_WAIT_MS`]), so guessing tokens is slow while a typo costs nothing.
pub struct Throttle {
    map: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

pub const FREE_FAILURES: u32 = 3;
pub const MAX_WAIT_MS: i64 = 60_000;
/// Failures older than this are forgotten.
const FORGET_MS: i64 = 15 * 60_000;
/// Addresses remembered at most.
const MAX_ADDRESSES: usize = 10_000;

fn wait_ms(count: u32) -> i64 {
    if count < FREE_FAILURES {
        0
    } else {
        (1_000i64 << (count - FREE_FAILURES).min(6)).min(MAX_WAIT_MS)
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `ip` must still wait before its next try (0: it may try).
    pub fn wait(&self, ip: IpAddr, now_ms: i64) -> i64 {
        let map = self.lock();
        match map.get(&ip) {
            Some(f) if now_ms - f.last_ms < FORGET_MS => {
                (f.last_ms + wait_ms(f.count) - now_ms).max(0)
            }
            _ => 0,
        }
    }

    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, f| now_ms - f.last_ms < FORGET_MS);
            if map.len() >= MAX_ADDRESSES
                && let Some(oldest) = map.iter().min_by_key(|(_, f)| f.last_ms).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
        });
        if now_ms - f.last_ms >= FORGET_MS {
            f.count = 0;
        }
        f.count += 1;
        f.last_ms = now_ms;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::auth::Role;
    use std::time::Duration;

    fn alice() -> Caller {
        Caller {
            name: "alice".into(),
            role: Role::Support,
        }
    }

    #[test]
    fn a_session_lives_while_used_and_ends_after_the_idle_time() {
        let s = Sessions::new(Duration::from_secs(60));
        let id = s.create(alice(), 0);
        assert_eq!(id.len(), 64);
        assert!(s.touch(&id, 59_000).is_some());
        // Used at 59 s: alive until 119 s.
        assert!(s.touch(&id, 118_000).is_some());
        assert!(s.touch(&id, 178_000).is_none());
        assert!(s.touch(&id, 1).is_none(), "an expired session is gone");
        assert!(s.touch("nope", 0).is_none());
    }

    #[test]
    fn each_session_has_its_own_id_and_csrf_token() {
        let s = Sessions::new(Duration::from_secs(60));
        let (a, b) = (s.create(alice(), 0), s.create(alice(), 0));
        assert_ne!(a, b);
        let (sa, sb) = (s.touch(&a, 0).unwrap(), s.touch(&b, 0).unwrap());
        assert_ne!(sa.csrf, sb.csrf);
        assert_ne!(sa.csrf, a);
        s.remove(&a);
        assert!(s.touch(&a, 0).is_none());
        assert!(s.touch(&b, 0).is_some());
    }

    #[test]
    fn sign_in_failures_from_one_address_wait_longer_and_longer() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..FREE_FAILURES {
            assert_eq!(t.wait(ip, i64::from(i)), 0, "a typo costs nothing");
            t.failed(ip, i64::from(i));
        }
        let now = i64::from(FREE_FAILURES);
        assert_eq!(t.wait(ip, now), 999);
        assert_eq!(t.wait(other, now), 0, "other addresses are not slowed");
        t.failed(ip, 10_000);
        assert_eq!(t.wait(ip, 10_000), 2_000);
        for _ in 0..20 {
            t.failed(ip, 10_000);
        }
        assert_eq!(t.wait(ip, 10_000), MAX_WAIT_MS);
        t.succeeded(ip);
        assert_eq!(t.wait(ip, 10_000), 0);
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_addresses() {
        let t = Throttle::default();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert!(t.lock().len() <= MAX_ADDRESSES);
    }
}
