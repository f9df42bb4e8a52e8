//! What every request may need: [`AppState`], built by the app and shared by the routes.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::actors::Phones;
use crate::auth::Auth;
use crate::config::Config;
use crate::engine::sandbox::SandboxNetwork;
use crate::events::EventBus;
use crate::monitor::Monitor;
use crate::net;

/// The handles every request may need, shared by the routes.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub monitor: Arc<Monitor>,
    pub phones: Arc<Phones>,
    pub events: EventBus,
    /// The simulated network, when `engine = "sandbox"`.
    pub sandbox: Option<Arc<SandboxNetwork>>,
    /// The client for outbound requests (media links), guarded by `network.*`.
    pub http: net::Outbound,
    /// The client for webhook test pings (webhook timeouts).
    pub webhook_client: net::Outbound,
    /// Serialises webhook changes, so "one webhook per service" holds.
    pub webhook_edits: Arc<tokio::sync::Mutex<()>>,
    /// The reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: super::client::TrustedProxies,
}
