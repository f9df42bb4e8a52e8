//! Per-address throttling of password attempts: after `max_failures` wrong passwords
//! within `window`, the address is refused until the window that began with its first
//! failure ends. A correct password clears the address's record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    count: u32,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when the address must wait before trying again.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.lock();
        match failures.get(&ip) {
            Some(w) if now.duration_since(w.started) >= self.window => {
                failures.remove(&ip);
                Ok(())
            }
            Some(w) if w.count >= self.max_failures => Err(self.window.saturating_sub(now.duration_since(w.started))),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        // Forget stale windows so the map cannot grow without bound.
        if failures.len() > 10_000 {
            let window = self.window;
            failures.retain(|_, w| now.duration_since(w.started) < window);
        }
        let entry = failures.entry(ip).or_insert(Window { started: now, count: 0 });
        if now.duration_since(entry.started) >= self.window {
            *entry = Window { started: now, count: 0 };
        }
        entry.count += 1;
    }

    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_window_ends() {
        let throttle = LoginThrottle::new(2, Duration::from_millis(50));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        throttle.record_failure(ip);
        assert!(throttle.check(ip).is_ok());
        throttle.record_failure(ip);
        assert!(throttle.check(ip).is_err());
        assert!(throttle.check(other).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.check(ip).is_ok());
    }

    #[test]
    fn success_clears_failures() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        throttle.record_failure(ip);
        throttle.record_success(ip);
        throttle.record_failure(ip);
        assert!(throttle.check(ip).is_ok());
    }
}
