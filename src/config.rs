//! Configuration: embedded `config/default.toml`, then `--config FILE`, then `WAGATE_*`
//! environment variables (`__` nests), then command-line flags. Unknown keys and bad
//! values fail at start-up with the key named, never later at first use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The top-level keys of the configuration (sections and plain keys).
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "database_busy_timeout",
    "engine",
    "log",
    "server",
    "http",
    "auth",
    "limits",
    "health",
    "phones",
    "sandbox",
    "messaging",
    "cache",
    "network",
    "webhooks",
    "metrics",
    "whatsapp",
    "media",
];

/// The commented defaults, compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    #[serde(with = "humantime_serde")]
    pub database_busy_timeout: Duration,
    pub engine: EngineKind,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub health: HealthConfig,
    pub phones: PhonesConfig,
    pub sandbox: SandboxConfig,
    pub messaging: MessagingConfig,
    pub cache: CacheConfig,
    pub network: NetworkConfig,
    pub webhooks: WebhooksConfig,
    pub metrics: MetricsConfig,
    pub whatsapp: WhatsappConfig,
    pub media: MediaConfig,
}

/// Received media: which files the phones download, where they are kept, and how failed
/// downloads are retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// `"all"`, `"none"`, or a list of the kinds to download.
    pub download: MediaDownload,
    /// Received files declared larger than this are not downloaded (`skipped`).
    pub max_download_bytes: u64,
    /// Where files are kept; relative paths are under `data_dir`.
    pub dir: PathBuf,
    /// Downloads at once, per phone.
    pub concurrency: usize,
    /// Longest one download may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts at a download before it is `failed`.
    pub attempts: u32,
    /// The wait before the first retry; it doubles with each retry.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// The longest wait between retries.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
}

/// Which received media is downloaded: `"all"`, `"none"`, or a list of kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MediaDownload {
    Every(Everything),
    Kinds(Vec<MediaKind>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Everything {
    All,
    None,
}

impl MediaConfig {
    /// Why a received file of this kind and declared size is not downloaded, if it is not.
    pub fn skips(&self, kind: MediaKind, size: Option<u64>) -> Option<String> {
        if !self.downloads(kind) {
            return Some(format!("{} files are not downloaded (media.download)", kind.as_str()));
        }
        match size {
            Some(size) if size > self.max_download_bytes => Some(format!(
                "the file is larger than media.max_download_bytes ({} bytes)",
                self.max_download_bytes
            )),
            _ => None,
        }
    }

    /// Whether files of this kind are downloaded.
    pub fn downloads(&self, kind: MediaKind) -> bool {
        match &self.download {
            MediaDownload::Every(Everything::All) => true,
            MediaDownload::Every(Everything::None) => false,
            MediaDownload::Kinds(kinds) => kinds.contains(&kind),
        }
    }

    /// The folder files are kept in.
    pub fn dir_under(&self, data_dir: &std::path::Path) -> PathBuf {
        data_dir.join(&self.dir)
    }

    /// The wait before retry `n` (from 1).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.retry_backoff.saturating_mul(factor).min(self.retry_backoff_max)
    }
}

/// The real engine's settings (`engine = "whatsapp"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappConfig {
    /// How the linked device is named under Linked devices on the person's phone.
    pub device_name: String,
    /// The presence set on every connect.
    pub presence: Presence,
    /// Development only, in a build with the `emulator` feature: the WebSocket to connect
    /// to instead of WhatsApp's servers (a `wa-emulator`). Empty: WhatsApp.
    pub server_url: String,
}

/// Whether the linked device shows as online. `unavailable` keeps push notifications
/// coming to the person's phone; `available` stops them while the gateway is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Available,
    Unavailable,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Empty, or an address to serve `/metrics` on without authentication.
    pub listen: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Whatsapp,
    Sandbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

/// Who the server is reached as, and through which reverse proxies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Reverse proxies (CIDRs) whose forwarding header names the real client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header those proxies write; the others are a client's own and ignored.
    pub forwarded_header: ForwardedHeader,
    /// Host names the server answers to; empty: any.
    pub allowed_hosts: Vec<String>,
}

/// Which header a trusted proxy names the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
    XRealIp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub body_limit: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    pub cookie_secure: bool,
    pub login_max_failures: u32,
    #[serde(with = "humantime_serde")]
    pub login_window: Duration,
    pub allow_loopback_setup: bool,
    /// Failed passwords from all addresses together within `login_window` after which
    /// every further attempt is delayed (doubling up to `account_backoff_max`), so a
    /// distributed guesser is slowed without locking the owner out.
    pub account_backoff_after: u32,
    #[serde(with = "humantime_serde")]
    pub account_backoff_max: Duration,
    /// Most password hashes computed at once (each takes ~19 MiB and a core); 0: one per CPU.
    pub max_concurrent_hashes: usize,
    /// Most password checks waiting for a hashing slot; beyond it they get 429.
    pub hash_queue: usize,
    /// How often the password state is re-read from the database (`wagate password set`
    /// beside a running server).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_phones: u32,
    pub allowed_media: Vec<MediaKind>,
    pub max_media_bytes: usize,
    /// Most entries a list without pagination returns (`truncated: true` beyond it).
    pub unpaginated_max: u64,
}

pub use crate::domain::MediaKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhonesConfig {
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_wait: Duration,
    #[serde(with = "humantime_serde")]
    pub restart_backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub restart_backoff_max: Duration,
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// At most this many sessions log in with their stored link at once (start-up and
    /// restarts after a crash).
    pub resume_concurrency: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    #[serde(with = "humantime_serde")]
    pub qr_period: Duration,
    pub qr_count: u32,
    #[serde(with = "humantime_serde")]
    pub pairing_code_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub receipt_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagingConfig {
    pub pacing: Pacing,
    #[serde(with = "humantime_serde")]
    pub send_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub send_jitter: Duration,
    pub queue_size: usize,
    pub history_max_limit: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(with = "humantime_serde")]
    pub groups_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub lookup_ttl: Duration,
    pub capacity: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub allow_private: bool,
    /// Private or loopback networks that may be reached even with `allow_private` off.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Empty, or the proxy that carries every outbound request (`http://host:3128`).
    pub proxy: String,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// How long a delivery is retried, from its first attempt (or from a redelivery by
    /// hand), before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// An extra cap on attempts; 0 means none (only `give_up_after` counts).
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// Most pending deliveries one lane (webhook and phone) holds in memory; the rest
    /// wait in the database and are read in pages as the held ones drain.
    pub held_per_lane: usize,
}

impl Config {
    /// Whether sends are paced, with `auto` resolved for the configured engine.
    pub fn pacing_on(&self) -> bool {
        match self.messaging.pacing {
            Pacing::On => true,
            Pacing::Off => false,
            Pacing::Auto => self.engine == EngineKind::Whatsapp,
        }
    }
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration from every source in precedence order.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Self::base();
        if let Some(file) = &overrides.config_file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only variables naming a configuration section or key are configuration; other
        // WAGATE_* variables belong to scripts and tests around the server.
        figment = figment.merge(Env::prefixed("WAGATE_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.contains(&top.to_ascii_lowercase().as_str())
        }));
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        Self::from_figment(figment)
    }

    /// The embedded defaults only: a starting point that tests extend key by key.
    pub fn base() -> Figment {
        Figment::from(Toml::string(DEFAULT_TOML))
    }

    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|err| ConfigError::Invalid(describe(err)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if !self.database_url.is_empty()
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|scheme| self.database_url.starts_with(scheme))
        {
            return invalid(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql:// (or be empty for the default SQLite file)",
            );
        }
        if !self.whatsapp.server_url.is_empty() {
            if !cfg!(feature = "emulator") {
                return invalid(
                    "whatsapp.server_url",
                    "is for development against wa-emulator and needs a build with the `emulator` feature \
                     (cargo build --features emulator); leave it empty to reach WhatsApp",
                );
            }
            if !["ws://", "wss://"]
                .iter()
                .any(|s| self.whatsapp.server_url.starts_with(s))
            {
                return invalid("whatsapp.server_url", "must start with ws:// or wss://");
            }
        }
        let name = self.whatsapp.device_name.trim();
        if name.is_empty() || name.chars().count() > 50 {
            return invalid("whatsapp.device_name", "must be 1 to 50 characters");
        }
        if self.limits.unpaginated_max == 0 {
            return invalid("limits.unpaginated_max", "must be at least 1");
        }
        if self.media.concurrency == 0 {
            return invalid("media.concurrency", "must be at least 1");
        }
        if self.media.attempts == 0 {
            return invalid("media.attempts", "must be at least 1");
        }
        if self.auth.session_ttl < Duration::from_secs(1) {
            return invalid("auth.session_ttl", "must be at least 1s");
        }
        if self.auth.reload_interval < Duration::from_millis(10) {
            return invalid("auth.reload_interval", "must be at least 10ms");
        }
        if self.auth.login_max_failures == 0 {
            return invalid("auth.login_max_failures", "must be at least 1");
        }
        if self.auth.account_backoff_after == 0 {
            return invalid("auth.account_backoff_after", "must be at least 1");
        }
        for host in &self.server.allowed_hosts {
            if host.trim().is_empty() || host.contains(['/', ' ']) {
                return invalid(
                    "server.allowed_hosts",
                    "entries are host names such as wagate.example.com or 127.0.0.1",
                );
            }
        }
        if self.http.body_limit < 1024 {
            return invalid("http.body_limit", "must be at least 1024 bytes");
        }
        if self.health.refresh_interval < Duration::from_millis(200) {
            return invalid("health.refresh_interval", "must be at least 200ms");
        }
        if self.phones.call_timeout < Duration::from_millis(100) {
            return invalid("phones.call_timeout", "must be at least 100ms");
        }
        if self.phones.restart_backoff_min > self.phones.restart_backoff_max {
            return invalid(
                "phones.restart_backoff_min",
                "must not exceed phones.restart_backoff_max",
            );
        }
        if self.phones.resume_concurrency == 0 {
            return invalid("phones.resume_concurrency", "must be at least 1");
        }
        if self.messaging.queue_size == 0 {
            return invalid("messaging.queue_size", "must be at least 1");
        }
        if self.messaging.history_max_limit == 0 {
            return invalid("messaging.history_max_limit", "must be at least 1");
        }
        if !self.network.proxy.is_empty()
            && !url::Url::parse(&self.network.proxy)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") && u.host().is_some())
        {
            return invalid(
                "network.proxy",
                "must be empty or a proxy URL such as http://proxy.internal:3128",
            );
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return invalid("metrics.listen", "must be empty or an address such as 127.0.0.1:9100");
        }
        if self.webhooks.give_up_after.is_zero() {
            return invalid("webhooks.give_up_after", "must be longer than 0s");
        }
        if self.webhooks.held_per_lane < 2 {
            return invalid("webhooks.held_per_lane", "must be at least 2");
        }
        if self.webhooks.max_in_flight == 0 {
            return invalid("webhooks.max_in_flight", "must be at least 1");
        }
        if self.webhooks.backoff_min > self.webhooks.backoff_max {
            return invalid("webhooks.backoff_min", "must not exceed webhooks.backoff_max");
        }
        if self.cache.capacity == 0 {
            return invalid("cache.capacity", "must be at least 1");
        }
        if self.sandbox.qr_count == 0 {
            return invalid("sandbox.qr_count", "must be at least 1");
        }
        if self.sandbox.qr_period < Duration::from_millis(10) {
            return invalid("sandbox.qr_period", "must be at least 10ms");
        }
        Ok(())
    }

    /// `network.proxy` as a URL, when set (checked at load).
    pub fn proxy(&self) -> Option<url::Url> {
        url::Url::parse(&self.network.proxy).ok()
    }

    /// The database URL to connect to: the configured one, or the SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.sqlite_path().display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("wagate.db")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Figment's errors name the key and the source; keep every one of them in the message.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() || e.to_string().contains(&key) {
                e.to_string()
            } else {
                format!("{key}: {e}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load() {
        let config = Config::from_figment(Config::base()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.auth.session_ttl, Duration::from_secs(24 * 3600));
        assert!(config.database_url().starts_with("sqlite://"));
        // Outbound requests stay off private networks unless the operator opens them.
        assert!(!config.network.allow_private);
        assert!(config.network.allow_networks.is_empty() && config.proxy().is_none());
        assert!(config.server.trusted_proxies.is_empty() && config.server.allowed_hosts.is_empty());
    }

    #[test]
    fn bad_value_names_the_key() {
        let figment = Config::base().merge(Serialized::default("limits.max_phones", "many"));
        let err = Config::from_figment(figment).unwrap_err().to_string();
        assert!(err.contains("limits.max_phones"), "{err}");
    }

    #[test]
    fn the_emulator_url_needs_a_build_with_the_emulator_feature() {
        let with =
            |url: &str| Config::from_figment(Config::base().merge(Serialized::default("whatsapp.server_url", url)));
        if cfg!(feature = "emulator") {
            let config = with("ws://127.0.0.1:7780/ws/chat").unwrap();
            assert_eq!(config.whatsapp.server_url, "ws://127.0.0.1:7780/ws/chat");
            let err = with("http://127.0.0.1:7780").unwrap_err().to_string();
            assert!(err.contains("whatsapp.server_url") && err.contains("ws://"), "{err}");
        } else {
            let err = with("ws://127.0.0.1:7780/ws/chat").unwrap_err().to_string();
            assert!(err.contains("whatsapp.server_url") && err.contains("emulator"), "{err}");
        }
        assert!(with("").unwrap().whatsapp.server_url.is_empty());
    }

    #[test]
    fn the_device_name_is_checked() {
        let config = Config::from_figment(Config::base()).unwrap();
        assert_eq!(config.whatsapp.device_name, "wagate");
        assert_eq!(config.whatsapp.presence, Presence::Unavailable);
        for bad in ["", "   ", &"x".repeat(51)] {
            let figment = Config::base().merge(Serialized::default("whatsapp.device_name", bad));
            let err = Config::from_figment(figment).unwrap_err().to_string();
            assert!(err.contains("whatsapp.device_name"), "{err}");
        }
    }

    #[test]
    fn unknown_key_is_refused() {
        let figment = Config::base().merge(Toml::string("listn = \"1.2.3.4:5\""));
        let err = Config::from_figment(figment).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn every_top_level_key_of_the_defaults_is_known_to_the_environment_filter() {
        let defaults: toml::Table = DEFAULT_TOML.parse().unwrap();
        let mut keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut known = TOP_LEVEL_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(keys, known);
    }

    #[test]
    fn bad_database_url_is_refused() {
        let figment = Config::base().merge(Serialized::default("database_url", "mysql://x"));
        let err = Config::from_figment(figment).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
    }
}
