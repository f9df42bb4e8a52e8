//! What every request may need: [`AppState`], built by the app and shared by the routes.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::Auth;
use crate::config::Config;
use crate::engine::sandbox::SandboxNetwork;
use crate::gateway::Gateway;
use crate::monitor::Monitor;
use crate::net;

/// The handles every request may need, shared by the routes.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The connection, for the app's shutdown and for tests; handlers go through the
    /// gateway.
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub monitor: Arc<Monitor>,
    /// The use cases: every handler's way to the phones, the database and webhooks.
    pub gateway: Arc<Gateway>,
    /// The simulated network, when `engine = "sandbox"`.
    pub sandbox: Option<Arc<SandboxNetwork>>,
    /// The client for outbound requests (media links), guarded by `network.*`.
    pub http: net::Outbound,
    /// The reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: super::client::TrustedProxies,
}
