//! The real engine, on the `whatsapp-rust` crate. Each phone is a `Bot` with its own
//! SQLite key store (`<data_dir>/whatsapp/<number>.db`), started on connect and stopped
//! on disconnect. Inbound messages go through the crate's durability hook: WhatsApp is
//! acknowledged only after the gateway stored them (at-least-once). Connection trouble
//! that the crate only logs (an unreachable server) is reported as `Disconnected` with a
//! readable reason, so the phone's state never claims more than is true.
//!
//! One session per phone, one client per session at a time. Every client run has a
//! generation number: events from a client that was replaced or stopped are dropped, so an
//! old client can never overwrite what a new one reports. A watcher task owns each run;
//! when the crate ends a run by itself (QR codes exhausted, logged out, replaced, banned)
//! the session reports why and forgets the run, and the next connect starts a fresh one.

pub mod convert;
mod events;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use whatsapp_rust::bot::Bot;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::store::traits::DeviceStore;
use whatsapp_rust::transport::{TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory};
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::wacore::net::{StreamingHttpResponse, UploadBody};
use whatsapp_rust::wacore::store::DevicePropsOverride;
use whatsapp_rust::waproto::whatsapp::device_props::PlatformType;
use whatsapp_rust::{ChatStateType, Client};

use super::{
    Engine, EngineError, EngineEvent, EventSink, Group, Jid, Lookup, MediaKind, MediaRef, OutgoingContent,
    OutgoingMessage, PairingMode, Participant, PhoneNumber, SentMessage, Session,
};
use crate::config::{Presence, WhatsappConfig};
use crate::media::probe::{self, Probe};
use convert::{Uploaded, from_wa_jid, to_wa_jid};
use events::{Acks, Control, ControlSink, End, Forwarder, Hook};

/// How long a graceful disconnect (which flushes the device state) may take before the
/// bot is aborted. Shorter than the 10 s the phone supervisor gives its children at
/// shutdown, so a session always ends its own way instead of being cut off mid-flush.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);

/// How long logging out of a phone that is offline may take to connect first.
const LOGOUT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a send waits for WhatsApp's server to accept or refuse the message. Past it
/// the message counts as sent (it was written); a refusal after that fails it later.
const SERVER_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// How sessions reach WhatsApp: its WebSocket and HTTPS in production, fakes in tests.
#[derive(Clone)]
pub struct Network {
    pub transports: Arc<dyn TransportFactory>,
    pub http: Arc<dyn HttpClient>,
    /// The client version to report; `None` fetches WhatsApp Web's current one.
    pub version: Option<(u32, u32, u32)>,
}

impl Network {
    pub fn real() -> Self {
        Self {
            transports: Arc::new(TokioWebSocketTransportFactory::new()),
            http: Arc::new(UreqHttpClient::new()),
            version: None,
        }
    }

    /// A `wa-emulator` at `url` (`ws://HOST:PORT/ws/chat`), with a fixed client version
    /// since there is no web.whatsapp.com to ask.
    #[cfg(feature = "emulator")]
    pub fn emulator(url: &str) -> Self {
        Self {
            transports: Arc::new(TokioWebSocketTransportFactory::new().with_url(url)),
            http: Arc::new(EmulatorMediaHttp::new(url)),
            version: Some((2, 3000, 1)),
        }
    }

    /// WhatsApp, or the emulator `whatsapp.server_url` names (config validation refuses
    /// that key in a build without the `emulator` feature).
    pub fn for_config(config: &WhatsappConfig) -> Self {
        #[cfg(feature = "emulator")]
        if !config.server_url.is_empty() {
            return Self::emulator(&config.server_url);
        }
        let _ = config;
        Self::real()
    }
}

/// How sessions present themselves to WhatsApp.
#[derive(Debug, Clone)]
pub struct Options {
    pub device_name: String,
    pub presence: Presence,
}

impl From<&WhatsappConfig> for Options {
    fn from(config: &WhatsappConfig) -> Self {
        Self {
            device_name: config.device_name.trim().to_owned(),
            presence: config.presence,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            device_name: "wagate".into(),
            presence: Presence::Unavailable,
        }
    }
}

pub struct WhatsappEngine {
    dir: PathBuf,
    network: Network,
    options: Options,
    /// The live session of each phone (by digits): opening a phone again closes it first,
    /// so two clients never share a key store.
    sessions: Mutex<HashMap<String, Weak<Core>>>,
}

impl WhatsappEngine {
    pub fn new(data_dir: PathBuf, config: &WhatsappConfig) -> Self {
        Self::with_network(data_dir, Network::for_config(config), Options::from(config))
    }

    pub fn with_network(data_dir: PathBuf, network: Network, options: Options) -> Self {
        Self {
            dir: data_dir.join("whatsapp"),
            network,
            options,
            sessions: Mutex::default(),
        }
    }

    fn store_path(&self, phone: &PhoneNumber) -> PathBuf {
        self.dir.join(format!("{}.db", phone.digits()))
    }

    fn live(&self, phone: &PhoneNumber) -> Option<Arc<Core>> {
        lock(&self.sessions).get(phone.digits()).and_then(Weak::upgrade)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl Engine for WhatsappEngine {
    async fn open(&self, phone: &PhoneNumber, events: EventSink) -> Result<Arc<dyn Session>, EngineError> {
        if let Some(previous) = self.live(phone) {
            previous.close().await;
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| EngineError::Storage(e.to_string()))?;
        let path = self.store_path(phone);
        let linked = if path.exists() {
            let store = open_store(&path).await?;
            store
                .load()
                .await
                .map_err(|e| EngineError::Storage(e.to_string()))?
                .is_some_and(|device| device.pn.is_some())
        } else {
            false
        };
        let core = Arc::new(Core {
            phone: phone.clone(),
            path,
            sink: events,
            network: self.network.clone(),
            options: self.options.clone(),
            state: Mutex::new(SessionState {
                linked,
                generation: 0,
                running: None,
                end: None,
                code: None,
                closed: false,
            }),
            acks: Acks::default(),
            steps: tokio::sync::Mutex::new(()),
        });
        lock(&self.sessions).insert(phone.digits().to_owned(), Arc::downgrade(&core));
        Ok(Arc::new(WhatsappSession { core }))
    }

    async fn forget(&self, phone: &PhoneNumber) -> Result<(), EngineError> {
        if let Some(live) = self.live(phone) {
            live.close().await;
        }
        lock(&self.sessions).remove(phone.digits());
        delete_store(&self.store_path(phone))
    }
}

async fn open_store(path: &std::path::Path) -> Result<SqliteStore, EngineError> {
    SqliteStore::new(&path.to_string_lossy())
        .await
        .map_err(|e| EngineError::Storage(format!("cannot open the key store {}: {e}", path.display())))
}

/// Deletes a key store with its WAL files.
fn delete_store(path: &std::path::Path) -> Result<(), EngineError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(EngineError::Storage(format!("cannot delete {}: {err}", file.display())));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One run of a client, from connect until it stops.
struct Running {
    generation: u64,
    mode: PairingMode,
    client: Arc<Client>,
    /// Owns the bot's handle and waits for its run loop to end; aborting it aborts the bot.
    watcher: JoinHandle<()>,
    /// True once the run loop has ended.
    ended: watch::Receiver<bool>,
    /// Cancels the durability hook's wait, so stopping is not held up by a batch.
    stop: CancellationToken,
}

impl Running {
    /// Stops the client (flushing its keys and receipts) and waits for its run loop to end;
    /// past the deadline the bot is aborted.
    async fn halt(self, phone: &PhoneNumber) {
        self.stop.cancel();
        let mut ended = self.ended.clone();
        let client = Arc::clone(&self.client);
        let stopped = tokio::time::timeout(SHUTDOWN_TIMEOUT, async move {
            client.disconnect().await;
            let _ = ended.wait_for(|ended| *ended).await;
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(%phone, "the WhatsApp session did not stop in time; aborting it");
            self.watcher.abort();
        }
    }

    fn online(&self) -> bool {
        self.client.is_connected() && self.client.is_logged_in()
    }
}

impl Drop for Running {
    /// A run dropped without [`Running::halt`] (a panic, a cancelled future) must not
    /// live on: its client would share the key store with the next one.
    fn drop(&mut self) {
        self.stop.cancel();
        self.watcher.abort();
    }
}

struct SessionState {
    linked: bool,
    /// The current run's number; events and controls of any other run are dropped.
    generation: u64,
    running: Option<Running>,
    /// Why the current run is ending, told by the forwarder before the run loop exits.
    end: Option<End>,
    /// The pairing code on screen, to expire it.
    code: Option<String>,
    closed: bool,
}

/// A phone's session, shared with the tasks and handlers of its runs (they hold it weakly).
struct Core {
    phone: PhoneNumber,
    path: PathBuf,
    sink: EventSink,
    network: Network,
    options: Options,
    state: Mutex<SessionState>,
    /// Sends waiting for the server's answer.
    acks: Acks,
    /// Held by every step that starts or stops a run (connect, stop, logout, finish) for
    /// its whole length, halting included: while one client stops, no other starts on
    /// the same key store, and the keys are never deleted under a live client.
    steps: tokio::sync::Mutex<()>,
}

impl Core {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Reports an event of run `generation`, unless that run is no longer current.
    fn emit(&self, generation: u64, event: EngineEvent) {
        // Sent under the lock (the sink only queues), so a stop cannot slip in between
        // the check and the send.
        let state = self.lock();
        if !state.closed && state.generation == generation {
            (self.sink)(event);
        }
    }

    /// Reports the end of a run (it is no longer current by then).
    fn say(&self, event: EngineEvent) {
        if !self.lock().closed {
            (self.sink)(event);
        }
    }

    fn fenced_sink(self: &Arc<Self>, generation: u64) -> EventSink {
        let core = Arc::downgrade(self);
        Arc::new(move |event| {
            if let Some(core) = core.upgrade() {
                core.emit(generation, event);
            }
        })
    }

    fn control_sink(self: &Arc<Self>, generation: u64) -> ControlSink {
        let core = Arc::downgrade(self);
        Arc::new(move |control| {
            if let Some(core) = core.upgrade() {
                core.control(generation, control);
            }
        })
    }

    /// The current run's client, if `generation` is the current run.
    fn client_of(&self, generation: u64) -> Option<Arc<Client>> {
        let state = self.lock();
        state
            .running
            .as_ref()
            .filter(|r| r.generation == generation && state.generation == generation)
            .map(|r| Arc::clone(&r.client))
    }

    fn control(self: &Arc<Self>, generation: u64, control: Control) {
        {
            let mut state = self.lock();
            if state.closed || state.generation != generation {
                return;
            }
            match &control {
                Control::End(end) => state.end = Some(end.clone()),
                Control::Paired => {
                    state.linked = true;
                    state.code = None;
                }
                Control::CodeShown { code, .. } => state.code = Some(code.clone()),
                Control::Connected | Control::RefreshCode => {}
            }
        }
        let core = Arc::clone(self);
        match control {
            Control::End(_) => {
                tokio::spawn(async move { core.finish(generation).await });
            }
            Control::Paired => {}
            Control::Connected => {
                tokio::spawn(async move { core.set_presence(generation).await });
            }
            Control::CodeShown { code, valid_for } => {
                let core = Arc::downgrade(&core);
                tokio::spawn(async move {
                    tokio::time::sleep(valid_for).await;
                    let Some(core) = core.upgrade() else {
                        return;
                    };
                    let expired = {
                        let mut state = core.lock();
                        let expired =
                            state.generation == generation && !state.linked && state.code.as_ref() == Some(&code);
                        if expired {
                            state.end = Some(End::PairingExpired {
                                reason: "the pairing code was not entered in time; connect to get a new one".into(),
                            });
                        }
                        expired
                    };
                    if expired {
                        core.finish(generation).await;
                    }
                });
            }
            Control::RefreshCode => {
                tokio::spawn(async move { core.refresh_code(generation).await });
            }
        }
    }

    /// Sets the configured presence: the crate announces "available" on every login by
    /// itself, which would silence the person's phone.
    async fn set_presence(&self, generation: u64) {
        let Some(client) = self.client_of(generation) else {
            return;
        };
        let presence = client.presence();
        let result = match self.options.presence {
            Presence::Available => presence.set_available().await,
            Presence::Unavailable => presence.set_unavailable().await,
        };
        if let Err(err) = result {
            tracing::warn!(phone = %self.phone, error = %err, "cannot set the presence");
        }
    }

    /// Asks for a new pairing code after WhatsApp retired the one on screen.
    async fn refresh_code(self: &Arc<Self>, generation: u64) {
        let Some(client) = self.client_of(generation) else {
            return;
        };
        if let Err(err) = client.pair_with_code(self.pair_code_options()).await {
            // The crate reports the failure as `PairingCodeError` too, which ends the run.
            tracing::warn!(phone = %self.phone, error = %err, "cannot get a new pairing code");
        }
    }

    fn pair_code_options(&self) -> PairCodeOptions {
        PairCodeOptions {
            phone_number: self.phone.digits().to_owned(),
            ..Default::default()
        }
    }

    /// Ends run `generation` (if it is still current): stops its client, then reports why.
    async fn finish(self: &Arc<Self>, generation: u64) {
        let _steps = self.steps.lock().await;
        let (running, end) = {
            let mut state = self.lock();
            if state.running.as_ref().map(|r| r.generation) != Some(generation) {
                return;
            }
            state.generation += 1;
            state.code = None;
            (state.running.take(), state.end.take())
        };
        if let Some(running) = running {
            running.halt(&self.phone).await;
        }
        let end = end.unwrap_or(End::Stopped {
            reason: "the connection to WhatsApp ended and the client stopped; connect to try again".into(),
            failed: false,
        });
        tracing::info!(phone = %self.phone, ?end, "the WhatsApp session ended");
        match end {
            End::LoggedOut { reason } => {
                // The client has stopped: nothing writes to the store any more.
                self.lock().linked = false;
                if let Err(err) = delete_store(&self.path) {
                    tracing::warn!(phone = %self.phone, error = %err, "cannot delete the phone's keys");
                }
                self.say(EngineEvent::LoggedOut { reason });
            }
            End::PairingExpired { reason } => self.say(EngineEvent::PairingFailed { reason }),
            End::Stopped { reason, failed } => self.say(EngineEvent::Stopped { reason, failed }),
        }
    }

    /// Starts a client run. A `quiet` run reports nothing (logging out an offline phone).
    async fn start(self: &Arc<Self>, mode: PairingMode, quiet: bool) -> Result<Running, EngineError> {
        let store = open_store(&self.path).await?;
        let (generation, linked) = {
            let mut state = self.lock();
            if state.closed {
                return Err(EngineError::NotConnected);
            }
            state.generation += 1;
            state.end = None;
            state.code = None;
            (state.generation, state.linked)
        };
        let (sink, control): (EventSink, ControlSink) = if quiet {
            (Arc::new(|_| {}), Arc::new(|_| {}))
        } else {
            (self.fenced_sink(generation), self.control_sink(generation))
        };
        let stop = CancellationToken::new();
        let forwarder = Forwarder::new(Arc::clone(&sink), control, mode, self.acks.clone());
        let mut builder = Bot::builder()
            .with_backend(store)
            .with_transport_factory(ObservedTransports {
                inner: Arc::clone(&self.network.transports),
                sink: Arc::clone(&sink),
            })
            .with_http_client(ObservedHttp {
                inner: Arc::clone(&self.network.http),
                sink: Arc::clone(&sink),
            })
            .with_event_handler(forwarder.clone())
            .with_inbound_durability_hook(Hook::new(sink, stop.clone()))
            // Shown under Linked devices on the person's phone (set when pairing).
            .with_device_props(
                DevicePropsOverride::new()
                    .with_os(self.options.device_name.clone())
                    .with_platform_type(PlatformType::DESKTOP),
            )
            .skip_history_sync();
        if let Some(version) = self.network.version {
            builder = builder.with_version(version);
        }
        if mode == PairingMode::Code && !linked {
            builder = builder.with_pair_code(self.pair_code_options());
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| EngineError::Storage(format!("cannot start the WhatsApp session: {e}")))?;
        let client = bot.client();
        forwarder.attach(&client);
        let handle = bot.spawn();
        let (ended_tx, ended) = watch::channel(false);
        let core = Arc::downgrade(self);
        let watcher = tokio::spawn(async move {
            handle.await;
            let _ = ended_tx.send(true);
            // On a task of its own: finishing drops this run, whose drop aborts this task.
            if let Some(core) = core.upgrade() {
                tokio::spawn(async move { core.finish(generation).await });
            }
        });
        Ok(Running {
            generation,
            mode,
            client,
            watcher,
            ended,
            stop,
        })
    }

    /// Stops the current run, if any, without reporting (the caller says what happened).
    async fn stop(&self) {
        let _steps = self.steps.lock().await;
        self.stop_locked().await;
    }

    async fn stop_locked(&self) {
        let running = {
            let mut state = self.lock();
            state.generation += 1;
            state.code = None;
            state.running.take()
        };
        if let Some(running) = running {
            running.halt(&self.phone).await;
        }
    }

    async fn close(&self) {
        let _steps = self.steps.lock().await;
        self.lock().closed = true;
        self.stop_locked().await;
    }
}

pub struct WhatsappSession {
    core: Arc<Core>,
}

impl WhatsappSession {
    /// The client of a running bot that is logged in and online.
    fn online(&self) -> Result<Arc<Client>, EngineError> {
        match &self.core.lock().running {
            Some(running) if running.online() => Ok(Arc::clone(&running.client)),
            _ => Err(EngineError::NotConnected),
        }
    }

    /// Uploads the message's media, if it has any, and reads what it shows of itself.
    async fn upload(
        &self,
        client: &Client,
        content: &OutgoingContent,
    ) -> Result<Option<(Uploaded, Probe)>, EngineError> {
        let OutgoingContent::Media(media) = content else {
            return Ok(None);
        };
        // Two files read at a time at most: decoding is CPU and memory, and sends wait for
        // it rather than crowd the machine.
        static PROBES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
        let (kind, data) = (media.kind, media.data.clone());
        let permit = PROBES.acquire().await.ok();
        let probe = tokio::task::spawn_blocking(move || probe::probe(kind, &data))
            .await
            .unwrap_or_default();
        drop(permit);
        let response = client
            .upload(
                media.data.to_vec(),
                convert::wa_media_type(media.kind),
                UploadOptions::default(),
            )
            .await
            .map_err(|e| EngineError::Protocol(format!("media upload failed: {e}")))?;
        let uploaded = Uploaded {
            url: response.url,
            direct_path: response.direct_path,
            media_key: response.media_key.to_vec(),
            file_enc_sha256: response.file_enc_sha256.to_vec(),
            file_sha256: response.file_sha256.to_vec(),
            file_length: response.file_length,
            media_key_timestamp: response.media_key_timestamp,
            streaming_sidecar: response.streaming_sidecar,
        };
        Ok(Some((uploaded, probe)))
    }

    /// Connects a quiet run of an offline phone, to tell WhatsApp it logs out.
    async fn connect_to_log_out(&self) -> Option<Running> {
        let running = self.core.start(PairingMode::Qr, true).await.ok()?;
        let deadline = tokio::time::Instant::now() + LOGOUT_CONNECT_TIMEOUT;
        while !running.online() {
            if tokio::time::Instant::now() >= deadline || *running.ended.borrow() {
                running.halt(&self.core.phone).await;
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(running)
    }
}

#[async_trait]
impl Session for WhatsappSession {
    fn is_linked(&self) -> bool {
        self.core.lock().linked
    }

    async fn connect(&self, mode: PairingMode) -> Result<(), EngineError> {
        let _steps = self.core.steps.lock().await;
        let restart = {
            let state = self.core.lock();
            if state.closed {
                return Err(EngineError::NotConnected);
            }
            match &state.running {
                // Already running, or pairing the way that was asked.
                Some(running) if state.linked || running.mode == mode => return Ok(()),
                Some(_) => true,
                None => false,
            }
        };
        if restart {
            // Pairing the other way (QR ↔ code) needs a client set up for it.
            self.core.stop_locked().await;
        }
        // Under the step lock nothing else starts or stops a run: install it. A run that
        // already ended is finished by its watcher once the lock is free.
        let running = self.core.start(mode, false).await?;
        self.core.lock().running = Some(running);
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), EngineError> {
        self.core.stop().await;
        Ok(())
    }

    async fn logout(&self) -> Result<(), EngineError> {
        let _steps = self.core.steps.lock().await;
        // No event of the run that is logged out reaches the phone: the caller reports it.
        let running = {
            let mut state = self.core.lock();
            state.generation += 1;
            state.running.take()
        };
        let running = match running {
            Some(running) if running.online() => Some(running),
            Some(running) => {
                running.halt(&self.core.phone).await;
                None
            }
            None => None,
        };
        // An offline phone connects briefly, so the account's Linked devices loses it too.
        let running = match running {
            Some(running) => Some(running),
            None if self.is_linked() => self.connect_to_log_out().await,
            None => None,
        };
        if let Some(running) = running {
            // Messages still waiting for the gateway stay unacknowledged (redelivered to
            // the next link, if any) rather than holding up the logout.
            running.stop.cancel();
            // Best effort: the keys go either way.
            let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, running.client.logout()).await;
            running.halt(&self.core.phone).await;
        }
        self.core.lock().linked = false;
        delete_store(&self.core.path)
    }

    async fn send(&self, mut message: OutgoingMessage) -> Result<SentMessage, EngineError> {
        let client = self.online()?;
        let to = to_wa_jid(&message.to).map_err(EngineError::Rejected)?;
        if message.to.server() == crate::domain::GROUP_SERVER
            && (!message.mentions.is_empty() || message.quoted.is_some())
        {
            address_group_by_lid(&client, &to, &mut message).await;
        }
        let uploaded = self.upload(&client, &message.content).await?;
        let proto =
            convert::outgoing(&message, uploaded.as_ref().map(|(u, p)| (u, p))).map_err(EngineError::Rejected)?;
        let id = message.id.clone().unwrap_or_else(|| client.generate_message_id());
        let answer = self.core.acks.wait(&id);
        let options = whatsapp_rust::SendOptions::default().with_message_id(id.clone());
        if let Err(err) = client.send_message_with_options(to, proto, options).await {
            self.core.acks.forget(&id);
            return Err(send_error(err));
        }
        match tokio::time::timeout(SERVER_ACK_TIMEOUT, answer).await {
            Ok(Ok(Some(code))) => {
                return Err(EngineError::Rejected(format!(
                    "WhatsApp's server refused the message (error {code})"
                )));
            }
            Ok(_) => {}
            Err(_) => {
                self.core.acks.forget(&id);
                tracing::info!(phone = %self.core.phone, %id, "no answer from the server in time; counted as sent");
            }
        }
        Ok(SentMessage {
            id,
            timestamp: Utc::now(),
        })
    }

    async fn download(
        &self,
        media: &MediaRef,
        kind: MediaKind,
        size: Option<u64>,
        into: std::fs::File,
    ) -> Result<(), EngineError> {
        let client = self.online()?;
        let params = whatsapp_rust::download::DownloadParams::encrypted(
            media.direct_path.clone(),
            &media.media_key,
            &media.file_sha256,
            &media.file_enc_sha256,
            size.unwrap_or(0),
            convert::wa_media_type(kind),
        );
        match client.download_from_params_to_writer(&params, into).await {
            Ok(_) => Ok(()),
            // Gone from WhatsApp's servers: asking again cannot help.
            Err(err) if matches!(status_of(&err), Some(404 | 410)) => Err(EngineError::NotFound(format!(
                "the file is no longer on WhatsApp's servers ({err})"
            ))),
            Err(err) => Err(EngineError::Protocol(format!("media download failed: {err}"))),
        }
    }

    async fn mark_read(&self, chat: &Jid, sender: Option<&Jid>, ids: &[String]) -> Result<(), EngineError> {
        let client = self.online()?;
        let chat = to_wa_jid(chat).map_err(EngineError::Rejected)?;
        let sender = sender.map(to_wa_jid).transpose().map_err(EngineError::Rejected)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        client
            .mark_as_read(&chat, sender.as_ref(), &ids)
            .await
            .map_err(|e| EngineError::Protocol(format!("read receipts failed: {e}")))
    }

    async fn set_typing(&self, chat: &Jid, typing: bool) -> Result<(), EngineError> {
        let client = self.online()?;
        let to = to_wa_jid(chat).map_err(EngineError::Rejected)?;
        let state = if typing {
            ChatStateType::Composing
        } else {
            ChatStateType::Paused
        };
        client
            .chatstate()
            .send(&to, state)
            .await
            .map_err(|e| EngineError::Protocol(e.to_string()))
    }

    async fn lookup(&self, numbers: &[String]) -> Result<Vec<Lookup>, EngineError> {
        use whatsapp_rust::usync::{
            UsyncAddressingMode, UsyncContext, UsyncMode, UsyncOutcome, UsyncProtocol, UsyncProtocolKind,
            UsyncProtocolResult, UsyncQuery, UsyncUser,
        };
        let client = self.online()?;
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        // WhatsApp answers under the account's canonical number (Brazil's ninth digit,
        // Mexico's 521 → 52), which need not be the digits asked about: each answer is
        // matched to its question by the query text it echoes, never by comparing numbers.
        let query = UsyncQuery::new(
            UsyncMode::Query,
            UsyncContext::Interactive,
            vec![
                UsyncProtocol::Contact {
                    addressing_mode: UsyncAddressingMode::Pn,
                },
                UsyncProtocol::Lid,
                UsyncProtocol::BusinessVerifiedName,
            ],
            numbers.iter().map(|n| UsyncUser::from_phone(n.as_str())).collect(),
        )
        .map_err(|e| EngineError::Rejected(e.to_string()))?;
        let response = client
            .query_usync(query)
            .await
            .map_err(|e| EngineError::Protocol(e.to_string()))?;
        let lookups: Vec<Lookup> = numbers
            .iter()
            .map(|number| {
                let answer = response
                    .users
                    .iter()
                    .find_map(|user| match user.protocol(UsyncProtocolKind::Contact) {
                        Some(UsyncProtocolResult::Contact(UsyncOutcome::Value(contact)))
                            if contact
                                .content
                                .as_deref()
                                .is_some_and(|echo| echo.trim_start_matches('+') == number.as_str()) =>
                        {
                            Some((user, contact.contact_type == "in"))
                        }
                        _ => None,
                    });
                let Some((user, exists)) = answer else {
                    return Lookup {
                        number: number.clone(),
                        jid: Jid::user(number),
                        exists: false,
                        lid: None,
                        is_business: None,
                    };
                };
                // The phone-number JID WhatsApp knows the account by (the answer's own id,
                // or its `pn_jid` when it answered with the LID).
                let canonical = [user.id.as_ref(), user.pn_jid.as_ref()]
                    .into_iter()
                    .flatten()
                    .filter(|jid| jid.is_pn())
                    .find_map(from_wa_jid)
                    .unwrap_or_else(|| Jid::user(number));
                let lid = match user.protocol(UsyncProtocolKind::Lid) {
                    Some(UsyncProtocolResult::Lid(UsyncOutcome::Value(Some(lid)))) => from_wa_jid(lid),
                    _ => user.id.as_ref().filter(|jid| jid.is_lid()).and_then(from_wa_jid),
                };
                let is_business = matches!(
                    user.protocol(UsyncProtocolKind::Business),
                    Some(UsyncProtocolResult::Business(UsyncOutcome::Value(_)))
                );
                Lookup {
                    number: number.clone(),
                    jid: canonical,
                    exists,
                    lid,
                    is_business: Some(is_business),
                }
            })
            .collect();
        // What WhatsApp said about LIDs is the client's to keep too (the crate's own
        // lookup does the same), so sends and receipts address the account consistently.
        let mappings: Vec<(String, String)> = lookups
            .iter()
            .filter(|l| l.exists)
            .filter_map(|l| Some((l.lid.as_ref()?.user_part().to_owned(), l.jid.user_part().to_owned())))
            .collect();
        if !mappings.is_empty()
            && let Err(err) = client
                .add_lid_pn_mappings(mappings, whatsapp_rust::wacore::types::LearningSource::Usync)
                .await
        {
            tracing::warn!(error = %err, "cannot keep the LIDs a lookup returned");
        }
        Ok(lookups)
    }

    async fn groups(&self) -> Result<Vec<Group>, EngineError> {
        let client = self.online()?;
        let groups = client.groups().get_participating().await.map_err(group_error)?;
        let mut out: Vec<Group> = groups.values().filter_map(group).collect();
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(out)
    }

    async fn group(&self, jid: &Jid) -> Result<Group, EngineError> {
        let client = self.online()?;
        let wa_jid = to_wa_jid(jid).map_err(EngineError::Rejected)?;
        let meta = client.groups().get_metadata(&wa_jid).await.map_err(group_error)?;
        group(&meta).ok_or_else(|| EngineError::NotFound(format!("group {jid}")))
    }

    async fn close(&self) {
        self.core.close().await;
    }
}

/// Names the members of a group WhatsApp addresses by LID by their LIDs in `message`, from
/// the crate's group cache (the one its own sends use; filled from the server once). For a
/// group addressed by phone number, or one that cannot be read, the message goes as it is.
async fn address_group_by_lid(client: &Client, group: &whatsapp_rust::Jid, message: &mut OutgoingMessage) {
    use whatsapp_rust::wacore::types::message::AddressingMode;
    match client.groups().query_info(group).await {
        Ok(info) if info.addressing_mode == AddressingMode::Lid => {
            convert::address_by_lid(message, |pn| info.lid_user_for_phone_user(pn).map(ToString::to_string));
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(%group, error = %err, "cannot read the group to address its members"),
    }
}

fn group(meta: &whatsapp_rust::GroupMetadata) -> Option<Group> {
    Some(Group {
        jid: from_wa_jid(&meta.id)?,
        subject: meta.subject.clone(),
        description: meta.description.clone(),
        owner: meta.creator_pn.as_ref().or(meta.creator.as_ref()).and_then(from_wa_jid),
        created_at: convert::unix_time(meta.creation_time),
        participants: meta
            .participants
            .iter()
            .filter_map(|p| {
                Some(Participant {
                    jid: from_wa_jid(p.phone_number.as_ref().unwrap_or(&p.jid))?,
                    admin: p.is_admin(),
                    super_admin: p.participant_type == whatsapp_rust::ParticipantType::SuperAdmin,
                })
            })
            .collect(),
    })
}

fn send_error(err: whatsapp_rust::SendError) -> EngineError {
    match err {
        whatsapp_rust::SendError::NotLoggedIn => EngineError::NotConnected,
        whatsapp_rust::SendError::InvalidRequest(why) => EngineError::Rejected(why),
        other => EngineError::Protocol(other.to_string()),
    }
}

fn group_error(err: whatsapp_rust::GroupError) -> EngineError {
    let text = err.to_string();
    if text.contains("item-not-found") || text.contains("404") {
        EngineError::NotFound(text)
    } else if text.contains("forbidden") || text.contains("403") {
        EngineError::Rejected(text)
    } else {
        EngineError::Protocol(text)
    }
}

/// The transport factory, reporting failed connection attempts as `Disconnected`.
struct ObservedTransports {
    inner: Arc<dyn TransportFactory>,
    sink: EventSink,
}

#[async_trait]
impl TransportFactory for ObservedTransports {
    async fn create_transport(
        &self,
    ) -> Result<
        (
            Arc<dyn Transport>,
            whatsapp_rust::async_channel::Receiver<TransportEvent>,
        ),
        anyhow::Error,
    > {
        match self.inner.create_transport().await {
            Ok(transport) => Ok(transport),
            Err(err) => {
                (self.sink)(EngineEvent::Disconnected {
                    reason: format!("cannot reach WhatsApp's servers: {err}; retrying"),
                });
                Err(err)
            }
        }
    }
}

/// The HTTP client, reporting a failed version check (the first step of every connect)
/// as `Disconnected`.
struct ObservedHttp {
    inner: Arc<dyn HttpClient>,
    sink: EventSink,
}

#[async_trait]
impl HttpClient for ObservedHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        let version_check = request.url.starts_with("https://web.whatsapp.com/");
        let result = self.inner.execute(request).await;
        if version_check && let Err(err) = &result {
            (self.sink)(EngineEvent::Disconnected {
                reason: format!("cannot reach web.whatsapp.com for the client version: {err}; retrying"),
            });
        }
        result
    }

    // Media goes through the inner client's streaming paths, so a download is written to
    // its file as it arrives instead of being held in memory whole.
    fn supports_streaming(&self) -> bool {
        self.inner.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.inner.execute_streaming(request)
    }

    fn supports_upload_streaming(&self) -> bool {
        self.inner.supports_upload_streaming()
    }

    fn execute_upload(&self, request: HttpRequest, body: UploadBody, length: u64) -> anyhow::Result<HttpResponse> {
        self.inner.execute_upload(request, body, length)
    }
}

/// The emulator's media server speaks plain HTTP, where WhatsApp's media hosts speak
/// HTTPS (which whatsapp-rust always asks for): requests to the emulator's own address
/// go there over HTTP, everything else as asked.
#[cfg(feature = "emulator")]
struct EmulatorMediaHttp {
    host: String,
    inner: UreqHttpClient,
}

#[cfg(feature = "emulator")]
impl EmulatorMediaHttp {
    /// For the emulator whose chat socket is `url` (`ws://HOST:PORT/ws/chat`).
    fn new(url: &str) -> Self {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_default();
        Self {
            host,
            inner: UreqHttpClient::new(),
        }
    }
}

#[cfg(feature = "emulator")]
#[async_trait]
impl HttpClient for EmulatorMediaHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.inner.execute(self.rewrite(request)).await
    }

    fn supports_streaming(&self) -> bool {
        self.inner.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.inner.execute_streaming(self.rewrite(request))
    }

    fn supports_upload_streaming(&self) -> bool {
        self.inner.supports_upload_streaming()
    }

    fn execute_upload(&self, request: HttpRequest, body: UploadBody, length: u64) -> anyhow::Result<HttpResponse> {
        self.inner.execute_upload(self.rewrite(request), body, length)
    }
}

#[cfg(feature = "emulator")]
impl EmulatorMediaHttp {
    /// The request, over plain HTTP when it is for the emulator.
    fn rewrite(&self, mut request: HttpRequest) -> HttpRequest {
        if let Some(rest) = request.url.strip_prefix("https://")
            && rest.split('/').next() == Some(self.host.as_str())
        {
            request.url = format!("http://{rest}");
        }
        request
    }
}

/// The HTTP status WhatsApp's media servers answered a download with, if any.
fn status_of(err: &whatsapp_rust::anyhow::Error) -> Option<u16> {
    use whatsapp_rust::ErrorChainExt as _;
    let err: &(dyn std::error::Error + Send + Sync + 'static) = err.as_ref();
    err.http_status()
}
