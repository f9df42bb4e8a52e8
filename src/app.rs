//! Builds the application (database, auth, background tasks, routes) and runs it until a
//! shutdown signal. [`App::build`] binds the listener first, so tests can ask for port 0
//! and read the real port from [`App::port`].

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, EndpointExt, Route, Server};
use ractor::{Actor, ActorRef};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::actors::outbox::Outbox;
use crate::actors::root::{self, RootArgs, RootMsg, RootSupervisor};
use crate::actors::{Directory, Phones, Registry, Shared};
use crate::api::{self, AppState};
use crate::auth::Auth;
use crate::config::{Config, EngineKind};
use crate::db;
use crate::engine::Engine;
use crate::engine::sandbox::{SandboxEngine, SandboxNetwork};
use crate::engine::whatsapp::WhatsappEngine;
use crate::events::EventBus;
use crate::gateway::Gateway;
use crate::media::store::MediaStore;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::net::{self, UrlPolicy};

pub struct App {
    state: AppState,
    acceptor: TcpAcceptor,
    port: u16,
    stop: CancellationToken,
    root: ActorRef<RootMsg>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with_engine(config, None).await
    }

    /// Like [`App::build`], with a given engine instead of the configured one (tests use
    /// it to put the real engine on a fake network).
    pub async fn build_with_engine(config: Config, engine: Option<Arc<dyn Engine>>) -> anyhow::Result<App> {
        install_crypto_provider();
        crate::private::secure_data_dir(config.data_dir())
            .with_context(|| format!("cannot make the data directory {} private", config.data_dir().display()))?;
        let db = db::connect(&config).await.context("cannot connect to the database")?;
        db::migrate(&db).await.context("cannot apply database migrations")?;
        let auth = Auth::load(db.clone(), config.auth.clone())
            .await
            .context("cannot load the auth state")?;
        let auth = Arc::new(auth);
        let stop = CancellationToken::new();
        auth.spawn_reload(config.auth.reload_interval, stop.clone());
        let monitor = Monitor::new();
        monitor.spawn(config.health.refresh_interval, stop.clone());
        let config = Arc::new(config);
        let (engine, sandbox): (Arc<dyn Engine>, _) = match (engine, config.engine) {
            (Some(engine), _) => (engine, None),
            (None, EngineKind::Sandbox) => {
                let network = SandboxNetwork::load(config.data_dir.clone(), config.sandbox.clone())
                    .context("cannot load the sandbox network")?;
                (Arc::new(SandboxEngine::new(Arc::clone(&network))), Some(network))
            }
            (None, EngineKind::Whatsapp) => (
                Arc::new(WhatsappEngine::new(config.data_dir.clone(), &config.whatsapp)),
                None,
            ),
        };
        let events = EventBus::new(1024);
        let directory = Directory::default();
        Phones::load_directory(&db, &directory)
            .await
            .context("cannot load the phones")?;
        let outbox = Arc::new(Outbox::default());
        outbox.load(&db).await.context("cannot load the webhooks")?;
        let media_dir = config.media.dir_under(config.data_dir());
        let media = MediaStore::open(media_dir.clone())
            .with_context(|| format!("cannot open the media folder {}", media_dir.display()))?;
        let shared = Arc::new(Shared {
            db: db.clone(),
            engine,
            config: Arc::clone(&config),
            directory,
            registry: Registry::default(),
            events: events.clone(),
            restarts: Default::default(),
            cache: Default::default(),
            outbox,
            metrics: Arc::new(Metrics::new()),
            logins: Arc::new(Semaphore::new(config.phones.resume_concurrency)),
            media,
        });
        let supervisor_slot = Arc::default();
        let (root, _) = Actor::spawn(
            None,
            RootSupervisor,
            RootArgs {
                shared: Arc::clone(&shared),
                phone_supervisor: Arc::clone(&supervisor_slot),
            },
        )
        .await
        .context("cannot start the actor tree")?;
        let phones = Arc::new(Phones::new(shared, supervisor_slot));
        let url_policy = UrlPolicy::from_config(&config.network);
        let proxy = config.proxy();
        let http = net::Outbound::new(
            url_policy.clone(),
            proxy.as_ref(),
            config.network.connect_timeout,
            config.network.fetch_timeout,
        )
        .context("cannot build the HTTP client")?;
        let gateway = Arc::new(Gateway::new(
            phones,
            db.clone(),
            Arc::clone(&config),
            events,
            url_policy,
        ));
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .context("the listener has no TCP address")?;
        let trusted_proxies =
            api::client::TrustedProxies::new(config.server.trusted_proxies.clone(), config.server.forwarded_header);
        Ok(App {
            state: AppState {
                trusted_proxies,
                config,
                db,
                auth,
                monitor,
                gateway,
                sandbox,
                http,
            },
            acceptor,
            port,
            stop,
            root,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to
    /// `http.shutdown_grace`) and stops the background tasks.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let grace = self.state.config.http.shutdown_grace;
        let endpoint = routes(self.state.clone());
        let metrics_server = self.spawn_metrics_listener().await?;
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(grace))
            .await;
        self.stop.cancel();
        if let Some(server) = metrics_server {
            server.abort();
        }
        root::shut_down(&self.root).await;
        self.state.db.clone().close().await.ok();
        result.context("the HTTP server failed")
    }
}

impl App {
    /// With `metrics.listen` set, `/metrics` is also served there, without authentication.
    async fn spawn_metrics_listener(&self) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let listen = &self.state.config.metrics.listen;
        if listen.is_empty() {
            return Ok(None);
        }
        let gateway = Arc::clone(&self.state.gateway);
        let none: Option<Arc<Auth>> = None;
        let app = Route::new().at("/metrics", api::metrics::scrape.data(gateway).data(none));
        let acceptor = TcpListener::bind(listen.clone())
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {listen} for metrics"))?;
        Ok(Some(tokio::spawn(async move {
            if let Err(err) = Server::new_with_acceptor(acceptor).run(app).await {
                tracing::error!(error = %err, "the metrics listener failed");
            }
        })))
    }
}

/// Every route, wrapped in the middleware stack.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = api::service();
    let docs = service.swagger_ui();
    let metrics = state.gateway.metrics();
    let scrape = api::metrics::scrape
        .data(Arc::clone(&state.gateway))
        .data(Some(Arc::clone(&state.auth)));
    let limits = api::middleware::BodyLimits {
        default: state.config.http.body_limit,
        // A message may carry media, base64-encoded in JSON (4/3 of its size) or uploaded.
        message: state.config.limits.max_media_bytes / 3 * 4 + state.config.http.body_limit,
    };
    let timeout = state.config.http.request_timeout;
    // Served over HTTPS (behind a TLS proxy): browsers must never fall back to HTTP.
    let hsts = state.config.auth.cookie_secure;
    let hosts = Arc::new(api::middleware::AllowedHosts::new(&state.config.server.allowed_hosts));
    Route::new()
        .at(format!("{}/openapi.json", api::PREFIX), api::spec_endpoint)
        .nest(api::PREFIX, service)
        .nest("/docs", docs.with(crate::web::docs_headers()))
        .at("/metrics", scrape)
        .nest("/", crate::web::routes())
        .around(move |ep, req| api::middleware::limit_body(ep, req, limits))
        .around(move |ep, req| api::middleware::time_out(ep, req, timeout))
        .around(api::error::json_errors)
        .with_if(
            hsts,
            poem::middleware::SetHeader::new().overriding("Strict-Transport-Security", "max-age=31536000"),
        )
        .around(move |ep, req| api::middleware::check_host(ep, req, Arc::clone(&hosts)))
        .with(poem::middleware::CatchPanic::new().with_handler(api::error::panic_response))
        .around(move |ep, req| api::middleware::trace_requests(ep, req, Arc::clone(&metrics)))
        .data(state)
}

pub use crate::net::install_crypto_provider;
