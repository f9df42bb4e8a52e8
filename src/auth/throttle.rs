//! Throttling of password attempts, two ways:
//! - per client address (an IPv6 address counts as its /64, the smallest block one
//!   subscriber gets): every attempt is counted *before* its password is hashed, so
//!   parallel guesses cannot all slip past the check; after `max_failures` within
//!   `window` the address is refused until the window that began with its first attempt
//!   ends. A correct password clears the address's record.
//! - for the owner's account as a whole: beyond `backoff_after` failures from all
//!   addresses within the window, each attempt waits first (doubling up to `backoff_max`),
//!   which slows a guesser with many addresses without ever locking the owner out.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Independent locks, so attempts from different addresses rarely wait for each other.
const SHARDS: usize = 16;
/// A shard is swept of expired windows only once it has doubled since its last sweep (and
/// has at least this many), so sweeping costs O(1) per attempt on average.
const MIN_SWEEP: usize = 1024;
/// The first delay of the account back-off.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    hasher: RandomState,
    shards: [Mutex<Shard>; SHARDS],
    account: Mutex<Window>,
    backoff_after: u32,
    backoff_max: Duration,
}

#[derive(Default)]
struct Shard {
    windows: HashMap<IpAddr, Window>,
    sweep_at: usize,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    /// The window as of `now`: a new one once `length` has passed.
    fn current(&mut self, now: Instant, length: Duration) -> &mut Self {
        if now.duration_since(self.started) >= length {
            *self = Window { started: now, count: 0 };
        }
        self
    }
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration, backoff_after: u32, backoff_max: Duration) -> Self {
        Self {
            max_failures,
            window,
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::default()),
            account: Mutex::new(Window {
                started: Instant::now(),
                count: 0,
            }),
            backoff_after,
            backoff_max,
        }
    }

    /// Counts an attempt from `ip` before its password is checked, and returns when the
    /// window it counts in began. `Err(wait)` when the address must wait before trying
    /// again; nothing is counted then.
    pub fn reserve(&self, ip: IpAddr) -> Result<Instant, Duration> {
        let key = key(ip);
        let now = Instant::now();
        let mut shard = lock(self.shard(&key));
        shard.sweep(now, self.window);
        let window = shard.windows.entry(key).or_insert(Window { started: now, count: 0 });
        let window = window.current(now, self.window);
        if window.count >= self.max_failures {
            return Err(self.window.saturating_sub(now.duration_since(window.started)));
        }
        window.count += 1;
        Ok(window.started)
    }

    /// Gives back an attempt reserved in the window that began at `started` whose password
    /// was never checked; an attempt of a window that has ended is not given to the next.
    pub fn release(&self, ip: IpAddr, started: Instant) {
        let key = key(ip);
        if let Some(window) = lock(self.shard(&key)).windows.get_mut(&key)
            && window.started == started
        {
            window.count = window.count.saturating_sub(1);
        }
    }

    /// The password was right: the address starts afresh.
    pub fn record_success(&self, ip: IpAddr) {
        let key = key(ip);
        lock(self.shard(&key)).windows.remove(&key);
    }

    /// The password was wrong: counts against the account. Returns the number of failures
    /// in the current window when that starts or doubles the back-off, for the log.
    pub fn record_failure(&self) -> Option<u32> {
        let now = Instant::now();
        let mut account = lock(&self.account);
        let window = account.current(now, self.window);
        window.count = window.count.saturating_add(1);
        let excess = window.count.checked_sub(self.backoff_after)?;
        (excess.is_power_of_two() || excess == 0).then_some(window.count)
    }

    /// How long an attempt waits before its password is checked.
    pub fn account_delay(&self) -> Duration {
        let now = Instant::now();
        let mut account = lock(&self.account);
        let window = account.current(now, self.window);
        match window.count.checked_sub(self.backoff_after) {
            None => Duration::ZERO,
            Some(excess) => BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(excess.min(30)))
                .min(self.backoff_max),
        }
    }

    fn shard(&self, key: &IpAddr) -> &Mutex<Shard> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }
}

impl Shard {
    fn sweep(&mut self, now: Instant, length: Duration) {
        if self.windows.len() < self.sweep_at.max(MIN_SWEEP) {
            return;
        }
        self.windows.retain(|_, w| now.duration_since(w.started) < length);
        self.sweep_at = self.windows.len() * 2;
    }
}

/// The throttled unit: an IPv4 address, or an IPv6 address's /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave a window inconsistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32, window: Duration) -> LoginThrottle {
        LoginThrottle::new(max, window, 1000, Duration::from_secs(5))
    }

    #[test]
    fn blocks_after_max_attempts_until_window_ends() {
        let throttle = throttle(2, Duration::from_millis(50));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(throttle.reserve(ip).is_ok());
        assert!(throttle.reserve(ip).is_ok());
        assert!(throttle.reserve(ip).is_err());
        assert!(throttle.reserve(other).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.reserve(ip).is_ok());
    }

    #[test]
    fn success_clears_and_release_gives_back() {
        let throttle = throttle(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        throttle.reserve(ip).unwrap();
        throttle.reserve(ip).unwrap();
        throttle.record_success(ip);
        throttle.reserve(ip).unwrap();
        let started = throttle.reserve(ip).unwrap();
        throttle.release(ip, started);
        assert!(throttle.reserve(ip).is_ok());
        assert!(throttle.reserve(ip).is_err());
        // An attempt from a window that has ended is not given back to a new one.
        throttle.release(ip, started - Duration::from_secs(1));
        assert!(throttle.reserve(ip).is_err());
    }

    #[test]
    fn an_ipv6_64_is_one_address_and_mapped_ipv4_is_ipv4() {
        let throttle = throttle(2, Duration::from_secs(60));
        throttle.reserve("2001:db8:1:2::1".parse().unwrap()).unwrap();
        throttle.reserve("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap();
        assert!(throttle.reserve("2001:db8:1:2::77".parse().unwrap()).is_err());
        assert!(throttle.reserve("2001:db8:1:3::1".parse().unwrap()).is_ok());
        throttle.reserve("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        throttle.reserve("10.0.0.1".parse().unwrap()).unwrap();
        assert!(throttle.reserve("10.0.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn sweeping_keeps_live_windows() {
        let throttle = throttle(1, Duration::from_secs(60));
        for i in 0..(MIN_SWEEP * SHARDS * 2) as u32 {
            throttle.reserve(IpAddr::V4(i.into())).unwrap();
        }
        assert!(throttle.reserve(IpAddr::V4(7.into())).is_err());
    }

    #[test]
    fn the_account_backs_off_by_doubling_up_to_the_cap() {
        let throttle = LoginThrottle::new(10, Duration::from_secs(60), 2, Duration::from_millis(350));
        assert_eq!(throttle.record_failure(), None);
        assert_eq!(throttle.account_delay(), Duration::ZERO);
        assert_eq!(throttle.record_failure(), Some(2));
        assert_eq!(throttle.account_delay(), Duration::from_millis(100));
        assert_eq!(throttle.record_failure(), Some(3));
        assert_eq!(throttle.account_delay(), Duration::from_millis(200));
        throttle.record_failure();
        throttle.record_failure();
        assert_eq!(throttle.account_delay(), Duration::from_millis(350));
    }
}
