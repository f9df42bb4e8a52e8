//! The real engine, on the `whatsapp-rust` crate. Each phone is a `Bot` with its own
//! SQLite key store (`<data_dir>/whatsapp/<number>.db`), started on connect and stopped
//! on disconnect. Inbound messages go through the crate's durability hook: WhatsApp is
//! acknowledged only after the gateway stored them (at-least-once). Connection trouble
//! that the crate only logs (an unreachable server) is reported as `Disconnected` with a
//! readable reason, so the phone's state never claims more than is true.

pub mod convert;
mod events;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::store::traits::DeviceStore;
use whatsapp_rust::transport::{TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory};
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::{ChatStateType, Client};

use super::{
    Engine, EngineError, EngineEvent, EventSink, Group, Jid, Lookup, OutgoingContent, OutgoingMessage, PairingMode,
    Participant, PhoneNumber, SentMessage, Session,
};
use convert::{Uploaded, from_wa_jid, to_wa_jid};
use events::{Forwarder, Hook};

/// How long a graceful disconnect may take before the bot is aborted.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How sessions reach WhatsApp: its WebSocket and HTTPS in production, fakes in tests.
#[derive(Clone)]
pub struct Network {
    pub transports: Arc<dyn TransportFactory>,
    pub http: Arc<dyn HttpClient>,
}

impl Network {
    pub fn real() -> Self {
        Self {
            transports: Arc::new(TokioWebSocketTransportFactory::new()),
            http: Arc::new(UreqHttpClient::new()),
        }
    }
}

pub struct WhatsappEngine {
    dir: PathBuf,
    network: Network,
}

impl WhatsappEngine {
    pub fn new(data_dir: PathBuf) -> Self {
        Self::with_network(data_dir, Network::real())
    }

    pub fn with_network(data_dir: PathBuf, network: Network) -> Self {
        Self {
            dir: data_dir.join("whatsapp"),
            network,
        }
    }

    fn store_path(&self, phone: &PhoneNumber) -> PathBuf {
        self.dir.join(format!("{}.db", phone.digits()))
    }
}

#[async_trait]
impl Engine for WhatsappEngine {
    async fn open(&self, phone: &PhoneNumber, events: EventSink) -> Result<Arc<dyn Session>, EngineError> {
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
        Ok(Arc::new(WhatsappSession {
            phone: phone.clone(),
            path,
            sink: events,
            network: self.network.clone(),
            state: Mutex::new(SessionState { linked, running: None }),
        }))
    }

    async fn forget(&self, phone: &PhoneNumber) -> Result<(), EngineError> {
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

struct Running {
    handle: BotHandle,
    client: Arc<Client>,
}

struct SessionState {
    linked: bool,
    running: Option<Running>,
}

pub struct WhatsappSession {
    phone: PhoneNumber,
    path: PathBuf,
    sink: EventSink,
    network: Network,
    state: Mutex<SessionState>,
}

impl WhatsappSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client of a running bot that is logged in and online.
    fn online(&self) -> Result<Arc<Client>, EngineError> {
        match &self.lock().running {
            Some(running) if running.client.is_connected() && running.client.is_logged_in() => {
                Ok(Arc::clone(&running.client))
            }
            _ => Err(EngineError::NotConnected),
        }
    }

    async fn stop(&self) {
        let running = self.lock().running.take();
        if let Some(Running { mut handle, client }) = running {
            // `disconnect` flushes keys and receipts; the handle resolves when the run
            // loop has exited. Past the deadline the task is aborted.
            let stopped = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
                client.disconnect().await;
                (&mut handle).await;
            })
            .await;
            if stopped.is_err() {
                tracing::warn!(phone = %self.phone, "the WhatsApp session did not stop in time; aborting it");
                handle.abort();
            }
        }
    }

    async fn upload(&self, client: &Client, content: &OutgoingContent) -> Result<Option<Uploaded>, EngineError> {
        let OutgoingContent::Media(media) = content else {
            return Ok(None);
        };
        let response = client
            .upload(
                media.data.to_vec(),
                convert::wa_media_type(media.kind),
                UploadOptions::default(),
            )
            .await
            .map_err(|e| EngineError::Protocol(format!("media upload failed: {e}")))?;
        Ok(Some(Uploaded {
            url: response.url,
            direct_path: response.direct_path,
            media_key: response.media_key.to_vec(),
            file_enc_sha256: response.file_enc_sha256.to_vec(),
            file_sha256: response.file_sha256.to_vec(),
            file_length: response.file_length,
            media_key_timestamp: response.media_key_timestamp,
            streaming_sidecar: response.streaming_sidecar,
        }))
    }
}

#[async_trait]
impl Session for WhatsappSession {
    fn is_linked(&self) -> bool {
        self.lock().linked
    }

    async fn connect(&self, mode: PairingMode) -> Result<(), EngineError> {
        if self.lock().running.is_some() {
            return Ok(());
        }
        let store = open_store(&self.path).await?;
        let linked = self.is_linked();
        let forwarder = Forwarder::new(Arc::clone(&self.sink));
        let mut builder = Bot::builder()
            .with_backend(store)
            .with_transport_factory(ObservedTransports {
                inner: Arc::clone(&self.network.transports),
                sink: Arc::clone(&self.sink),
            })
            .with_http_client(ObservedHttp {
                inner: Arc::clone(&self.network.http),
                sink: Arc::clone(&self.sink),
            })
            .with_event_handler(forwarder.clone())
            .with_inbound_durability_hook(Hook::new(Arc::clone(&self.sink)))
            .skip_history_sync();
        if mode == PairingMode::Code && !linked {
            builder = builder.with_pair_code(PairCodeOptions {
                phone_number: self.phone.digits().to_owned(),
                ..Default::default()
            });
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| EngineError::Storage(format!("cannot start the WhatsApp session: {e}")))?;
        let client = bot.client();
        forwarder.attach(Arc::clone(&client));
        let handle = bot.spawn();
        self.lock().running = Some(Running { handle, client });
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), EngineError> {
        self.stop().await;
        Ok(())
    }

    async fn logout(&self) -> Result<(), EngineError> {
        let client = self.lock().running.as_ref().map(|r| Arc::clone(&r.client));
        if let Some(client) = client {
            // Best effort: unlinking needs a connection; the keys go either way.
            let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, client.logout()).await;
        }
        self.stop().await;
        self.lock().linked = false;
        delete_store(&self.path)
    }

    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, EngineError> {
        let client = self.online()?;
        let to = to_wa_jid(&message.to).map_err(EngineError::Rejected)?;
        let uploaded = self.upload(&client, &message.content).await?;
        let proto = convert::outgoing(&message, uploaded.as_ref()).map_err(EngineError::Rejected)?;
        let result = client.send_message(to, proto).await.map_err(send_error)?;
        Ok(SentMessage {
            id: result.message_id,
            timestamp: Utc::now(),
        })
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
        let client = self.online()?;
        let jids: Vec<whatsapp_rust::Jid> = numbers
            .iter()
            .map(|n| to_wa_jid(&Jid::user(n)))
            .collect::<Result<_, _>>()
            .map_err(EngineError::Rejected)?;
        let results = client
            .contacts()
            .is_on_whatsapp(&jids)
            .await
            .map_err(|e| EngineError::Protocol(e.to_string()))?;
        Ok(numbers
            .iter()
            .map(|number| {
                let found = results.iter().find(|r| {
                    [Some(&r.jid), r.pn_jid.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|j| j.user == number.as_str())
                });
                Lookup {
                    number: number.clone(),
                    jid: Jid::user(number),
                    exists: found.is_some_and(|r| r.is_registered),
                    lid: found.and_then(|r| r.lid.as_ref()).and_then(from_wa_jid),
                    is_business: found.map(|r| r.is_business),
                }
            })
            .collect())
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
        self.stop().await;
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
}
