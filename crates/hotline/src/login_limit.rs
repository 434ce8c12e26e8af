//! Login rate limiting and temporary lockout (docs/security.md, "Web").
//!
//! Sans-IO: [`LoginLimiter`] is fed a key (`ip:…`, `agent:…`, `admin:…`)
//! and the current [`Instant`]; it keeps no clock of its own, so tests
//! drive it with a fake one. [`max_failures`](LimitPolicy::max_failures)
//! failed attempts within [`window`](LimitPolicy::window) lock the key for
//! [`lockout`](LimitPolicy::lockout); a success resets it. In memory only:
//! a restart forgets every count.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many failures lock a key, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

impl Default for LimitPolicy {
    /// 5 failures in 5 minutes lock for 15 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(5 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// May this key try now?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused until this instant.
    Locked {
        until: Instant,
    },
}

#[derive(Default)]
struct Entry {
    /// Failures within the window, oldest first (at most `max_failures`).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Past this many keys, a failure first forgets the keys with nothing left
/// to remember (memory stays bounded under a spray of addresses).
const PRUNE_ABOVE: usize = 4096;

/// The failure counts and lockouts of every key.
pub struct LoginLimiter {
    policy: LimitPolicy,
    entries: HashMap<String, Entry>,
}

impl LoginLimiter {
    pub fn new(policy: LimitPolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// `key`'s verdict at `now` (records nothing).
    pub fn check(&mut self, key: &str, now: Instant) -> Verdict {
        match self.entries.get_mut(key) {
            Some(e) => match e.locked_until {
                Some(until) if now < until => Verdict::Locked { until },
                Some(_) => {
                    // The lockout is over: a fresh start.
                    self.entries.remove(key);
                    Verdict::Allowed
                }
                None => Verdict::Allowed,
            },
            None => Verdict::Allowed,
        }
    }

    /// Records a failed attempt by `key` at `now`; `Locked` when this one
    /// (or an earlier one) locked it.
    pub fn failure(&mut self, key: &str, now: Instant) -> Verdict {
        if let Verdict::Locked { until } = self.check(key, now) {
            return Verdict::Locked { until };
        }
        if self.entries.len() > PRUNE_ABOVE {
            self.prune(now);
        }
        let policy = self.policy;
        let e = self.entries.entry(key.to_owned()).or_default();
        while e
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= policy.window)
        {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        if e.failures.len() >= policy.max_failures.max(1) as usize {
            let until = now + policy.lockout;
            e.failures.clear();
            e.locked_until = Some(until);
            return Verdict::Locked { until };
        }
        Verdict::Allowed
    }

    /// A successful attempt: `key` starts afresh.
    pub fn success(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets keys neither locked nor with a failure in the window.
    pub fn prune(&mut self, now: Instant) {
        let window = self.policy.window;
        self.entries.retain(|_, e| {
            e.locked_until.is_some_and(|u| now < u)
                || e.failures
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Where the handlers get "now" from: the real clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A [`LoginLimiter`] shared by request handlers, with its clock.
#[derive(Clone)]
pub struct SharedLimiter {
    inner: Arc<Mutex<LoginLimiter>>,
    clock: Clock,
}

impl SharedLimiter {
    pub fn new(policy: LimitPolicy) -> Self {
        Self::with_clock(policy, Arc::new(Instant::now))
    }

    pub fn with_clock(policy: LimitPolicy, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LoginLimiter::new(policy))),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoginLimiter> {
        // A panic elsewhere while holding it leaves counts, not broken state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The longest wait any of `keys` is locked for, or `None`: go ahead.
    pub fn locked(&self, keys: &[&str]) -> Option<Duration> {
        let now = (self.clock)();
        let mut l = self.lock();
        keys.iter()
            .filter_map(|k| match l.check(k, now) {
                Verdict::Locked { until } => Some(until.saturating_duration_since(now)),
                Verdict::Allowed => None,
            })
            .max()
    }

    /// Records a failure for each of `keys`.
    pub fn failed(&self, keys: &[&str]) {
        let now = (self.clock)();
        let mut l = self.lock();
        for k in keys {
            l.failure(k, now);
        }
    }

    /// Resets each of `keys`.
    pub fn succeeded(&self, keys: &[&str]) {
        let mut l = self.lock();
        for k in keys {
            l.success(k);
        }
    }
}

/// `Retry-After` seconds for a wait (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fake clock: a fixed base plus seconds the test advances.
    #[derive(Clone)]
    pub struct FakeClock {
        base: Instant,
        secs: Arc<AtomicU64>,
    }

    impl FakeClock {
        pub fn new() -> Self {
            Self {
                base: Instant::now(),
                secs: Arc::new(AtomicU64::new(0)),
            }
        }
        pub fn advance(&self, secs: u64) {
            self.secs.fetch_add(secs, Ordering::SeqCst);
        }
        pub fn now(&self) -> Instant {
            self.base + Duration::from_secs(self.secs.load(Ordering::SeqCst))
        }
        pub fn clock(&self) -> Clock {
            let c = self.clone();
            Arc::new(move || c.now())
        }
    }

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn five_failures_lock_for_the_lockout() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(LimitPolicy::default());
        for i in 0..4 {
            assert_eq!(l.failure("ip:1.2.3.4", at(t0, i)), Verdict::Allowed);
        }
        let until = at(t0, 4 + 15 * 60);
        assert_eq!(
            l.failure("ip:1.2.3.4", at(t0, 4)),
            Verdict::Locked { until }
        );
        assert_eq!(l.check("ip:1.2.3.4", at(t0, 5)), Verdict::Locked { until });
        // Another key is unaffected.
        assert_eq!(l.check("ip:5.6.7.8", at(t0, 5)), Verdict::Allowed);
        // Failing while locked does not extend the lock.
        assert_eq!(
            l.failure("ip:1.2.3.4", at(t0, 100)),
            Verdict::Locked { until }
        );
        assert_eq!(
            l.check("ip:1.2.3.4", until - Duration::from_secs(1)),
            Verdict::Locked { until }
        );
        // Over: allowed with a clean count.
        assert_eq!(l.check("ip:1.2.3.4", until), Verdict::Allowed);
        for i in 0..4 {
            assert_eq!(
                l.failure("ip:1.2.3.4", until + Duration::from_secs(i)),
                Verdict::Allowed
            );
        }
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(LimitPolicy::default());
        // One failure a minute and a half: never five within five minutes.
        for i in 0..20 {
            assert_eq!(
                l.failure("agent:a1", at(t0, i * 90)),
                Verdict::Allowed,
                "{i}"
            );
        }
        // Five quickly: locked.
        let t1 = at(t0, 10_000);
        for i in 0..4 {
            assert_eq!(l.failure("agent:a1", at(t1, i)), Verdict::Allowed);
        }
        assert!(matches!(
            l.failure("agent:a1", at(t1, 4)),
            Verdict::Locked { .. }
        ));
    }

    #[test]
    fn success_resets() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(LimitPolicy::default());
        for i in 0..4 {
            l.failure("agent:a1", at(t0, i));
        }
        l.success("agent:a1");
        for i in 0..4 {
            assert_eq!(l.failure("agent:a1", at(t0, 10 + i)), Verdict::Allowed);
        }
    }

    #[test]
    fn prune_forgets_stale_keys_only() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(LimitPolicy::default());
        l.failure("old", t0);
        for i in 0..5 {
            l.failure("locked", at(t0, i));
        }
        l.failure("recent", at(t0, 400));
        l.prune(at(t0, 450));
        assert_eq!(l.len(), 2);
        assert!(matches!(
            l.check("locked", at(t0, 450)),
            Verdict::Locked { .. }
        ));
    }

    #[test]
    fn shared_limiter_reports_the_longest_wait() {
        let clock = FakeClock::new();
        let s = SharedLimiter::with_clock(LimitPolicy::default(), clock.clock());
        for _ in 0..5 {
            s.failed(&["ip:x", "agent:a"]);
        }
        clock.advance(60);
        let wait = s.locked(&["ip:x", "agent:a", "agent:b"]).unwrap();
        assert_eq!(wait, Duration::from_secs(14 * 60));
        assert_eq!(retry_after_secs(wait), 840);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        clock.advance(14 * 60);
        assert_eq!(s.locked(&["ip:x", "agent:a"]), None);
    }
}
