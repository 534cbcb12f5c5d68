//! Sign-in protection: how often a user name or a client address may fail to sign in,
//! and how many password verifications run at once.
//!
//! Two attacks it answers. *Guessing*: every failure is counted against the user name
//! and against the client address; past a few free failures each new one locks that
//! key for twice as long as the last (up to a cap), and a locked key is refused with
//! "try again in n s" *before* any password is checked, so even the right password
//! waits out the lock. *Flooding*: argon2id costs ~19 MiB and tens of milliseconds per
//! verification, so verifications take one of a few slots (one per core by default),
//! a bounded number of requests may wait for a slot, and one address may have only a
//! few in flight; the rest are turned away at once instead of piling up memory.
//!
//! The state is in memory: a restart forgets the counts, which costs an attacker one
//! restart per lock, and keeps the database out of the failure path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How sign-in failures are throttled and verifications bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInPolicy {
    /// Failures a user name may have before each further one locks it.
    pub free_failures_per_user: u32,
    /// The same for a client address (across all user names it tries).
    pub free_failures_per_address: u32,
    /// The first lock; each further failure doubles it.
    pub first_lock: Duration,
    /// The longest lock.
    pub longest_lock: Duration,
    /// Failures are forgotten this long after the last one.
    pub forget_after: Duration,
    /// Password verifications (and hashes) running at once.
    pub concurrent_verifications: usize,
    /// Sign-ins that may wait for a verification slot; more are refused at once.
    pub waiting_verifications: usize,
    /// Sign-ins one client address may have in flight at once.
    pub in_flight_per_address: usize,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        SignInPolicy {
            free_failures_per_user: 5,
            free_failures_per_address: 20,
            first_lock: Duration::from_secs(2),
            longest_lock: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(24 * 3600),
            concurrent_verifications: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8),
            waiting_verifications: 32,
            in_flight_per_address: 4,
        }
    }
}

/// Why a sign-in was turned away before its password was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The user name or the address failed too often; locked for `retry_after` more.
    Locked { retry_after: Duration },
    /// This address already has its share of sign-ins in flight.
    TooManyAtOnce,
    /// Every verification slot is taken and the waiting line is full.
    Busy,
}

/// Most user names and addresses whose failures are remembered at once (a few MiB).
const TRACKED_KEYS: usize = 100_000;

/// What a sign-in failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The service's sign-in guard (one per [`AppState`](crate::app::AppState)).
#[derive(Debug)]
pub struct SignInGuard {
    policy: SignInPolicy,
    failures: Mutex<HashMap<Key, Failures>>,
    in_flight: Mutex<HashMap<IpAddr, usize>>,
    verifications: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// A sign-in that passed [`SignInGuard::admit`]: its address's in-flight slot, given
/// back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted<'a> {
    guard: &'a SignInGuard,
    user: String,
    address: Option<IpAddr>,
}

/// A verification slot, held while argon2 runs.
#[derive(Debug)]
pub(crate) struct VerificationSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl SignInGuard {
    pub fn new(policy: SignInPolicy) -> Self {
        let slots = policy.concurrent_verifications.max(1);
        SignInGuard {
            policy,
            failures: Mutex::default(),
            in_flight: Mutex::default(),
            verifications: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Lets a sign-in for `user` from `address` (unknown when the service is not behind
    /// a socket, as in tests) go on to its password check, or says why not.
    pub(crate) fn admit(
        &self,
        user: &str,
        address: Option<IpAddr>,
    ) -> Result<Admitted<'_>, Refusal> {
        let now = Instant::now();
        let keys = [Some(Key::User(user.to_owned())), address.map(Key::Address)];
        {
            let failures = lock(&self.failures);
            let retry_after = keys
                .iter()
                .flatten()
                .filter_map(|key| failures.get(key)?.locked_until)
                .filter(|until| *until > now)
                .map(|until| until - now)
                .max();
            if let Some(retry_after) = retry_after {
                return Err(Refusal::Locked { retry_after });
            }
        }
        if let Some(address) = address {
            let mut in_flight = lock(&self.in_flight);
            let count = in_flight.entry(address).or_default();
            if *count >= self.policy.in_flight_per_address {
                return Err(Refusal::TooManyAtOnce);
            }
            *count += 1;
        }
        Ok(Admitted {
            guard: self,
            user: user.to_owned(),
            address,
        })
    }

    /// Waits for a verification slot, or refuses at once when the waiting line is full.
    pub(crate) async fn verification_slot(&self) -> Result<VerificationSlot, Refusal> {
        if let Ok(permit) = self.verifications.clone().try_acquire_owned() {
            return Ok(VerificationSlot(permit));
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = Leave(&self.waiting);
        if waiting >= self.policy.waiting_verifications {
            return Err(Refusal::Busy);
        }
        let permit = self.verifications.clone().acquire_owned().await;
        // the semaphore is never closed
        permit.map(VerificationSlot).map_err(|_| Refusal::Busy)
    }

    fn record_failure(&self, key: Key, free: u32, now: Instant) -> Option<Duration> {
        let mut failures = lock(&self.failures);
        if failures.len() >= TRACKED_KEYS {
            // made-up names from many addresses: keep only the keys that are locked
            failures.retain(|_, f| f.locked_until.is_some_and(|until| until > now));
        }
        let entry = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(entry.last) > self.policy.forget_after {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        let over = entry.count.checked_sub(free + 1)?;
        let lock = self
            .policy
            .first_lock
            .saturating_mul(2u32.saturating_pow(over.min(31)))
            .min(self.policy.longest_lock);
        entry.locked_until = Some(now + lock);
        Some(lock)
    }

    fn forget_stale(&self, now: Instant) {
        let forget_after = self.policy.forget_after;
        lock(&self.failures).retain(|_, f| now.duration_since(f.last) <= forget_after);
    }
}

impl Admitted<'_> {
    /// Counts a wrong password (or an unknown name); returns the lock it caused, if any.
    pub fn failed(self) -> Option<Duration> {
        let guard = self.guard;
        let now = Instant::now();
        let policy = &guard.policy;
        let by_user = guard.record_failure(
            Key::User(self.user.clone()),
            policy.free_failures_per_user,
            now,
        );
        let by_address = self.address.and_then(|address| {
            guard.record_failure(Key::Address(address), policy.free_failures_per_address, now)
        });
        by_user.max(by_address)
    }

    /// A correct password: the user name's failures are forgotten (the address's are
    /// not: one known password must not reset a spray across other names).
    pub(crate) fn succeeded(self) {
        let now = Instant::now();
        lock(&self.guard.failures).remove(&Key::User(self.user.clone()));
        self.guard.forget_stale(now);
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(address) = self.address {
            let mut in_flight = lock(&self.guard.in_flight);
            if let Some(count) = in_flight.get_mut(&address) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_flight.remove(&address);
                }
            }
        }
    }
}

/// Leaves the waiting line when dropped (whether a slot came or the request went away).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The maps hold counts only: a panic elsewhere cannot leave them half-updated.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SignInPolicy {
        SignInPolicy {
            free_failures_per_user: 3,
            free_failures_per_address: 5,
            first_lock: Duration::from_secs(10),
            longest_lock: Duration::from_secs(25),
            concurrent_verifications: 1,
            waiting_verifications: 1,
            in_flight_per_address: 2,
            ..SignInPolicy::default()
        }
    }

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_user_name_is_locked_after_its_free_failures_and_the_lock_doubles_up_to_the_cap() {
        let guard = SignInGuard::new(policy());
        let mut locks = Vec::new();
        for attempt in 0..6 {
            // a new address each time: only the user name's count can lock
            let admitted = guard.admit("alice", address(attempt));
            let admitted = match admitted {
                Ok(admitted) => admitted,
                Err(Refusal::Locked { .. }) => {
                    // wind the clock on by clearing the lock, keeping the count
                    for f in lock(&guard.failures).values_mut() {
                        f.locked_until = None;
                    }
                    guard.admit("alice", address(attempt)).unwrap()
                }
                Err(other) => panic!("{other:?}"),
            };
            locks.push(admitted.failed().map(|d| d.as_secs()));
        }
        assert_eq!(
            locks,
            [None, None, None, Some(10), Some(20), Some(25)],
            "three free failures, then 10 s doubling, capped at 25 s"
        );
        let refused = guard.admit("alice", address(99)).unwrap_err();
        assert!(
            matches!(refused, Refusal::Locked { retry_after } if retry_after > Duration::from_secs(20))
        );
        // another user name from another address is not affected
        assert!(guard.admit("bob", address(98)).is_ok());
    }

    #[test]
    fn an_address_spraying_many_names_is_locked_and_a_success_does_not_reset_it() {
        let guard = SignInGuard::new(policy());
        for n in 0..5 {
            assert_eq!(
                guard
                    .admit(&format!("user{n}"), address(1))
                    .unwrap()
                    .failed(),
                None
            );
        }
        guard.admit("owner", address(1)).unwrap().succeeded();
        assert_eq!(
            guard.admit("user6", address(1)).unwrap().failed(),
            Some(Duration::from_secs(10))
        );
        assert!(matches!(
            guard.admit("owner", address(1)),
            Err(Refusal::Locked { .. })
        ));
        // the same names from an unknown address are counted by name only
        assert!(guard.admit("user0", None).is_ok());
    }

    #[test]
    fn a_success_forgets_the_user_names_failures() {
        let guard = SignInGuard::new(policy());
        for _ in 0..3 {
            guard.admit("alice", None).unwrap().failed();
        }
        guard.admit("alice", None).unwrap().succeeded();
        for _ in 0..3 {
            assert_eq!(guard.admit("alice", None).unwrap().failed(), None);
        }
    }

    #[test]
    fn one_address_may_have_only_its_share_in_flight() {
        let guard = SignInGuard::new(policy());
        let first = guard.admit("a", address(1)).unwrap();
        let _second = guard.admit("b", address(1)).unwrap();
        assert_eq!(
            guard.admit("c", address(1)).unwrap_err(),
            Refusal::TooManyAtOnce
        );
        assert!(
            guard.admit("c", address(2)).is_ok(),
            "other addresses go on"
        );
        drop(first);
        assert!(guard.admit("c", address(1)).is_ok(), "a slot came back");
    }

    #[tokio::test]
    async fn verifications_beyond_the_slots_and_the_waiting_line_are_refused_at_once() {
        let guard = Arc::new(SignInGuard::new(policy()));
        let running = guard.verification_slot().await.unwrap();
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.verification_slot().await.map(drop) })
        };
        // let the waiter join the line
        while guard.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(guard.verification_slot().await.unwrap_err(), Refusal::Busy);
        drop(running);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(guard.waiting.load(Ordering::SeqCst), 0);
        assert!(guard.verification_slot().await.is_ok());
    }
}
