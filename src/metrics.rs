//! Prometheus metrics at `/metrics`: HTTP requests by operation and status with latency,
//! phones by status, session restarts, messages sent and received, webhook deliveries by
//! outcome, and the outbox depth. Counters are updated where things happen; gauges are
//! read when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::PhoneStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The API operation (`sendMessage`, …), or `dashboard`, `docs`, `other`.
    pub operation: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// delivered, failed (a failed attempt, to be retried) or given_up.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_latency: Family<OperationLabels, Histogram>,
    pub messages_sent: Counter,
    pub messages_received: Counter,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    pub session_restarts: Counter,
    phones: Family<StatusLabels, Gauge>,
    outbox_depth: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wagate");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let metrics = Self {
            http_requests,
            http_latency,
            messages_sent: Counter::default(),
            messages_received: Counter::default(),
            webhook_deliveries: Family::default(),
            session_restarts: Counter::default(),
            phones: Family::default(),
            outbox_depth: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests answered", metrics.http_requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            metrics.http_latency.clone(),
        );
        registry.register(
            "messages_sent",
            "Messages phones sent through the API",
            metrics.messages_sent.clone(),
        );
        registry.register(
            "messages_received",
            "Messages phones received",
            metrics.messages_received.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            metrics.webhook_deliveries.clone(),
        );
        registry.register(
            "session_restarts",
            "Phone sessions restarted by their supervisor",
            metrics.session_restarts.clone(),
        );
        registry.register("phones", "Phones by connection status", metrics.phones.clone());
        registry.register(
            "outbox_depth",
            "Webhook deliveries waiting to be sent or retried",
            metrics.outbox_depth.clone(),
        );
        Self { registry, ..metrics }
    }

    /// The text exposition, with the gauges set to the phones by status and the deliveries
    /// waiting, as read by the caller now.
    pub fn render(&self, phones: impl IntoIterator<Item = (PhoneStatus, u64)>, outbox_depth: u64) -> String {
        for (status, count) in phones {
            self.phones
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.outbox_depth.set(i64::try_from(outbox_depth).unwrap_or(i64::MAX));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
