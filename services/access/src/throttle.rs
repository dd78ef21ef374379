//! Login throttling, per account and per client address.
//!
//! An account may fail [`ACCOUNT_FREE_FAILURES`] times within [`WINDOW`],
//! an address [`ADDRESS_FREE_FAILURES`] times (several people may share
//! one); every further failure locks the key for twice as long as the last
//! one, from 1 s up to [`MAX_LOCK`], during which logins for it are refused
//! without checking a password. Such a refused attempt counts as a failure
//! of its address and, when the account is locked, of the account (not of
//! an account refused only for its address). Failures older than the window
//! are forgotten, and no lock outlasts `MAX_LOCK`, so an attacker cannot
//! lock a real user out for more than `MAX_LOCK` after they stop trying. A successful
//! login clears its account (not its address: one valid account must not
//! reset an address guessing at others). At most [`MAX_KEYS`] keys of each
//! kind are tracked; beyond that the entries whose last failure is oldest
//! are dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an account may have within the window before it is locked.
pub(crate) const ACCOUNT_FREE_FAILURES: u32 = 5;
/// Failures an address may have within the window before it is locked.
pub(crate) const ADDRESS_FREE_FAILURES: u32 = 10;
/// How long a failure counts.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest lock.
pub(crate) const MAX_LOCK: Duration = Duration::from_secs(5 * 60);
/// Keys tracked per kind (accounts, addresses).
pub(crate) const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
}

/// Failed logins of one kind of key.
#[derive(Debug)]
struct Tracker<K> {
    records: HashMap<K, Record>,
    /// Failures within the window before the first lock.
    free: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Tracker<K> {
    fn new(free: u32) -> Tracker<K> {
        Tracker {
            records: HashMap::new(),
            free,
        }
    }

    /// How long `key` stays locked after `now`, if it is.
    fn locked(&self, key: &K, now: Instant) -> Option<Duration> {
        let record = self.records.get(key)?;
        (record.locked_until > now).then(|| record.locked_until - now)
    }

    fn failed(&mut self, key: &K, now: Instant) {
        if !self.records.contains_key(key) {
            self.make_room(now);
        }
        let record = self.records.entry(key.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            locked_until: now,
        });
        if now.duration_since(record.last_failure) > WINDOW {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if let Some(lock) = lock_after(record.failures, self.free) {
            record.locked_until = now + lock;
        }
    }

    fn clear(&mut self, key: &K) {
        self.records.remove(key);
    }

    /// Forgets failures outside the window; when still full, the key whose
    /// last failure is oldest.
    fn make_room(&mut self, now: Instant) {
        if self.records.len() < MAX_KEYS {
            return;
        }
        self.records.retain(|_, record| {
            now.duration_since(record.last_failure) <= WINDOW || record.locked_until > now
        });
        if self.records.len() >= MAX_KEYS
            && let Some(oldest) = self
                .records
                .iter()
                .min_by_key(|(_, record)| record.last_failure)
                .map(|(key, _)| key.clone())
        {
            self.records.remove(&oldest);
        }
    }
}

/// The lock after the `failures`-th failure within the window: none for
/// the first `free`, then 1 s, 2 s, 4 s, … up to [`MAX_LOCK`].
fn lock_after(failures: u32, free: u32) -> Option<Duration> {
    let over = failures.checked_sub(free)?.checked_sub(1)?;
    let seconds = 1u64.checked_shl(over.min(32)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_LOCK))
}

/// Whether a login may be tried, and what failures locked.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    state: Mutex<Trackers>,
}

#[derive(Debug)]
struct Trackers {
    accounts: Tracker<String>,
    addresses: Tracker<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle {
            state: Mutex::new(Trackers {
                accounts: Tracker::new(ACCOUNT_FREE_FAILURES),
                addresses: Tracker::new(ADDRESS_FREE_FAILURES),
            }),
        }
    }
}

impl LoginThrottle {
    /// `None` when `account` may try to log in from `address` now; else
    /// how long to wait, after counting this refused try as a failure.
    pub(crate) fn refuse(&self, account: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let (account, address) = (account.to_string(), address.map(key));
        let mut state = self.lock();
        let account_locked = state.accounts.locked(&account, now).is_some();
        let address_locked = address.is_some_and(|a| state.addresses.locked(&a, now).is_some());
        if !account_locked && !address_locked {
            return None;
        }
        if account_locked {
            state.accounts.failed(&account, now);
        }
        if let Some(address) = address {
            state.addresses.failed(&address, now);
        }
        let by_account = state.accounts.locked(&account, now);
        by_account.max(address.and_then(|a| state.addresses.locked(&a, now)))
    }

    /// Records a failed login of `account` (when it is a valid name) from
    /// `address`.
    pub(crate) fn failed(&self, account: Option<&str>, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(account) = account {
            state.accounts.failed(&account.to_string(), now);
        }
        if let Some(address) = address {
            state.addresses.failed(&key(address), now);
        }
    }

    /// Clears the failures of `account` after it logged in.
    pub(crate) fn succeeded(&self, account: &str) {
        self.lock().accounts.clear(&account.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Trackers> {
        // The maps stay consistent if a holder panicked.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64 network (one host
/// commonly holds a whole /64).
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const THERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn locks_grow_from_one_second_to_the_cap() {
        assert_eq!(lock_after(5, 5), None);
        assert_eq!(lock_after(6, 5), Some(Duration::from_secs(1)));
        assert_eq!(lock_after(8, 5), Some(Duration::from_secs(4)));
        assert_eq!(lock_after(25, 5), Some(MAX_LOCK));
        assert_eq!(lock_after(u32::MAX, 5), Some(MAX_LOCK));
    }

    #[test]
    fn failures_lock_the_account_then_the_address_but_no_other() {
        let throttle = LoginThrottle::default();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            throttle.failed(Some("ana"), HERE);
            assert_eq!(throttle.refuse("ana", HERE), None);
        }
        throttle.failed(Some("ana"), HERE);
        assert!(throttle.refuse("ana", THERE).is_some(), "the account");
        assert_eq!(throttle.refuse("ben", HERE), None, "not yet the address");
        for _ in ACCOUNT_FREE_FAILURES..ADDRESS_FREE_FAILURES {
            assert!(throttle.refuse("ana", HERE).is_some());
        }
        let wait = throttle.refuse("ben", HERE).expect("the address");
        assert!(wait <= Duration::from_secs(2), "{wait:?}");
        assert_eq!(throttle.refuse("ben", THERE), None);
    }

    #[test]
    fn refused_tries_lengthen_the_lock_up_to_the_cap() {
        let throttle = LoginThrottle::default();
        for _ in 0..=ACCOUNT_FREE_FAILURES {
            throttle.failed(Some("ana"), HERE);
        }
        let waits: Vec<Duration> = (0..20)
            .filter_map(|_| throttle.refuse("ana", THERE))
            .collect();
        assert_eq!(waits.len(), 20);
        assert!(waits[0] <= Duration::from_secs(2) && waits[19] > Duration::from_secs(200));
        assert!(waits.iter().all(|wait| *wait <= MAX_LOCK));
    }

    #[test]
    fn a_success_clears_the_account_only() {
        let throttle = LoginThrottle::default();
        for _ in 0..ADDRESS_FREE_FAILURES + 1 {
            throttle.failed(Some("ana"), HERE);
        }
        throttle.succeeded("ana");
        assert_eq!(throttle.refuse("ana", THERE), None);
        assert!(throttle.refuse("ana", HERE).is_some());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let mut tracker = Tracker::new(ACCOUNT_FREE_FAILURES);
        let start = Instant::now();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            tracker.failed(&"ana", start);
        }
        let later = start + WINDOW + Duration::from_secs(1);
        tracker.failed(&"ana", later);
        assert_eq!(tracker.locked(&"ana", later), None);
        assert_eq!(tracker.records[&"ana"].failures, 1);
    }

    #[test]
    fn no_lock_outlasts_the_cap() {
        let mut tracker = Tracker::new(ACCOUNT_FREE_FAILURES);
        let start = Instant::now();
        for _ in 0..1000 {
            tracker.failed(&"ana", start);
        }
        assert_eq!(tracker.locked(&"ana", start), Some(MAX_LOCK));
        assert_eq!(tracker.locked(&"ana", start + MAX_LOCK), None);
    }

    #[test]
    fn tracked_keys_are_capped_oldest_first() {
        let mut tracker = Tracker::new(ACCOUNT_FREE_FAILURES);
        let start = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            tracker.failed(&i, start + Duration::from_millis(i as u64));
        }
        assert_eq!(tracker.records.len(), MAX_KEYS);
        assert!(!tracker.records.contains_key(&0));
        assert!(tracker.records.contains_key(&(MAX_KEYS + 9)));
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_key() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_eq!(key(mapped), HERE.unwrap());
    }
}
