//! Periodic background work that ends with the server: `while every.tick().await { … }`.

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub struct Every {
    ticker: Interval,
    stop: CancellationToken,
}

impl Every {
    /// Ticks at once, then every `period`; a late tick does not make the next ones bunch up.
    pub fn new(period: Duration, stop: CancellationToken) -> Self {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { ticker, stop }
    }

    /// Waits for the next tick; `false` once `stop` fired.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = self.ticker.tick() => true,
        }
    }
}
