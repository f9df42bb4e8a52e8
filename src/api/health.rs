//! `/api/v1/health`: a public liveness probe and the owner's view of resource usage.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::Errors;
use super::error::statuses::*;
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::PhoneStatus;

#[derive(Default)]
pub struct HealthApi;

/// The server answers.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct HealthView {
    /// Always `ok` while the server answers.
    status: String,
    /// The server's current time (RFC 3339).
    timestamp: DateTime<Utc>,
}

/// The machine's CPUs and their usage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CpuView {
    /// Logical CPUs of the machine.
    cores: u64,
    /// Machine-wide CPU usage over the last refresh interval, 0–100.
    usage_percent: f32,
    /// Load average over 1, 5 and 15 minutes (0 where the platform has none).
    load_average: Vec<f64>,
}

/// The machine's memory.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MemoryView {
    /// Memory of the machine in total.
    total_bytes: u64,
    /// Memory in use.
    used_bytes: u64,
    /// Memory available for use, free or reclaimable.
    available_bytes: u64,
}

/// The server process and its usage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ProcessView {
    /// Process id of the server.
    pid: u32,
    /// Resident memory of the server process.
    rss_bytes: u64,
    /// Virtual memory of the server process.
    virtual_bytes: u64,
    /// CPU usage of the server process; 100 means one full core.
    cpu_percent: f32,
}

/// Phones by connection state.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneCountsView {
    /// Every phone, in any state.
    total: u64,
    /// Phones not connected.
    disconnected: u64,
    /// Phones logging in with their stored link.
    connecting: u64,
    /// Phones waiting for the QR code to be scanned or the pairing code to be entered.
    pairing: u64,
    /// Phones online.
    connected: u64,
    /// Phones whose connection dropped, reconnecting by themselves.
    reconnecting: u64,
    /// Phones unlinked: connecting needs a new pairing.
    logged_out: u64,
    /// Phones whose session kept failing and was stopped.
    failed: u64,
}

/// Phone sessions: running now, and restarted.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ActorsView {
    /// Phone sessions restarted by their supervisor since the server started.
    session_restarts: u64,
    /// Phone sessions running now.
    running_sessions: u64,
}

/// Webhook deliveries waiting to be sent.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct QueuesView {
    /// Webhook deliveries waiting to be sent or retried (in the database).
    webhook_deliveries: u64,
    /// Of those, how many the dispatcher holds in memory (at most
    /// `webhooks.held_per_lane` per webhook and phone; the rest are read in pages).
    webhook_deliveries_held: u64,
}

/// CPU, memory and uptime of the machine and the server, and the phones and queues.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ResourcesView {
    cpu: CpuView,
    memory: MemoryView,
    process: ProcessView,
    /// Seconds since the server started.
    uptime_seconds: u64,
    /// When the server started.
    started_at: DateTime<Utc>,
    /// When the CPU and memory figures were read; null until the first reading.
    measured_at: Option<DateTime<Utc>>,
    phones: PhoneCountsView,
    actors: ActorsView,
    queues: QueuesView,
}

#[OpenApi(prefix_path = "/health", tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// Answers while the server runs. Needs no authentication, for load balancers and probes.
    #[oai(path = "/", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<HealthView> {
        Json(HealthView {
            status: "ok".into(),
            timestamp: Utc::now(),
        })
    }

    /// Resource usage
    ///
    /// CPU and memory of the machine and of the server process, uptime, phones by state,
    /// session restarts and webhook queues. CPU, memory and the count of waiting webhook
    /// deliveries are refreshed every `health.refresh_interval`.
    #[oai(path = "/resources", method = "get", operation_id = "healthResources")]
    async fn resources(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
    ) -> Result<Json<ResourcesView>, Errors<{ SIGNED_IN }>> {
        let s = state.monitor.snapshot();
        let health = state.gateway.health().await?;
        let counts = &health.phones;
        let count = |status: PhoneStatus| counts.get(&status).copied().unwrap_or(0);
        Ok(Json(ResourcesView {
            cpu: CpuView {
                cores: s.cpu_cores as u64,
                usage_percent: s.cpu_usage_percent,
                load_average: s.load_average.to_vec(),
            },
            memory: MemoryView {
                total_bytes: s.memory_total_bytes,
                used_bytes: s.memory_used_bytes,
                available_bytes: s.memory_available_bytes,
            },
            process: ProcessView {
                pid: std::process::id(),
                rss_bytes: s.process_rss_bytes,
                virtual_bytes: s.process_virtual_bytes,
                cpu_percent: s.process_cpu_percent,
            },
            uptime_seconds: state.monitor.uptime().as_secs(),
            started_at: state.monitor.started_at(),
            measured_at: s.taken_at,
            phones: PhoneCountsView {
                total: counts.values().sum(),
                disconnected: count(PhoneStatus::Disconnected),
                connecting: count(PhoneStatus::Connecting),
                pairing: count(PhoneStatus::Pairing),
                connected: count(PhoneStatus::Connected),
                reconnecting: count(PhoneStatus::Reconnecting),
                logged_out: count(PhoneStatus::LoggedOut),
                failed: count(PhoneStatus::Failed),
            },
            actors: ActorsView {
                session_restarts: health.session_restarts,
                running_sessions: health.running_sessions,
            },
            queues: QueuesView {
                webhook_deliveries: health.webhook_deliveries,
                webhook_deliveries_held: health.webhook_deliveries_held,
            },
        }))
    }
}
