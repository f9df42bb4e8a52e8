//! `PhoneSession`: one actor per phone, owning that phone's engine session. It turns
//! engine events into the phone's state (published to the directory, the database and the
//! event bus) and answers the gateway's requests. A request's failure goes back through
//! its reply port; only a broken session (`EngineEvent::Fatal`) fails the actor, so that
//! the supervisor restarts it.
//!
//! The actor is the only writer of its phone's messages, which keeps their `seq` numbers
//! gap-free ([`history`]); sends wait in the phone's own queue ([`sender`]); engine
//! queries (typing, lookups, groups) run on spawned tasks so `handle` never waits on
//! WhatsApp.

mod history;
mod media;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::{Pairing, PhoneEntry, PhoneError, Reply, Shared};
use crate::db::messages::{self, Model as StoredMessage};
use crate::db::phones::SessionState;
use crate::domain::{Jid, PhoneNumber, PhoneStatus};
use crate::engine::{
    EngineError, EngineEvent, EventSink, Group, Lookup, OutgoingMessage, PairingMode, Receipt, SentMessage, Session,
};
use sender::{SendJob, SendQueue, Spacing};

pub enum PhoneMsg {
    /// Connect, or pair when the phone has no link. Answers once there is something to
    /// show (a QR code, a pairing code, the connection) or `phones.connect_wait` passed.
    Connect {
        mode: PairingMode,
        reply: Reply<PhoneEntry>,
    },
    /// Go offline, keeping the link.
    Disconnect { reply: Reply<PhoneEntry> },
    /// Unlink the device and delete its keys.
    Logout { reply: Reply<PhoneEntry> },
    /// Something the engine reported.
    Engine(EngineEvent),
    /// `connect_wait` passed: answer the connect requests still waiting.
    ConnectWaitOver,
    /// Bring a phone that was online before the restart back online. `done` is told once the
    /// login is over (connected or not), which frees its slot in `Shared::logins`.
    Resume { done: oneshot::Sender<()> },
    /// Queue a message; answers with the stored message once the engine accepted it.
    Send {
        message: OutgoingMessage,
        reply: Reply<StoredMessage>,
    },
    /// The send queue's result for a message (internal).
    Sent {
        message: OutgoingMessage,
        result: Result<SentMessage, EngineError>,
        reply: Reply<StoredMessage>,
    },
    /// Show or clear "typing…" in a chat.
    Typing { chat: Jid, typing: bool, reply: Reply<()> },
    /// Send read receipts for received messages of a chat (of one author in a group).
    MarkRead {
        chat: Jid,
        sender: Option<Jid>,
        ids: Vec<String>,
        reply: Reply<()>,
    },
    /// Which numbers are on WhatsApp.
    Lookup {
        numbers: Vec<String>,
        reply: Reply<Vec<Lookup>>,
    },
    /// The groups the phone is in.
    Groups { reply: Reply<Vec<Group>> },
    /// One group's details.
    Group { jid: Jid, reply: Reply<Group> },
    /// Write the receipts gathered since the last flush (internal).
    FlushReceipts,
    /// Download a stored message's file, by its row (internal: a retry is due).
    FetchMedia(i64),
    /// Queue the next batch of pending downloads, after this `seq` (internal).
    ResumeMedia(i64),
    /// How a download went (internal).
    MediaFetched(media::Fetched),
}

pub struct PhoneSession;

pub struct PhoneArgs {
    pub phone: PhoneNumber,
    pub shared: Arc<Shared>,
    /// Resume the connection after this delay if the phone was online before.
    pub resume_after: Option<Duration>,
}

pub struct PhoneState {
    phone: PhoneNumber,
    shared: Arc<Shared>,
    session: Arc<dyn Session>,
    state: SessionState,
    pairing: Option<Pairing>,
    waiters: Vec<Reply<PhoneEntry>>,
    queue: SendQueue,
    /// The `seq` the next stored message gets.
    next_seq: i64,
    /// Receipts waiting to be written together ([`history::RECEIPT_BATCH`]).
    receipts: Vec<Receipt>,
    /// A login started by [`PhoneMsg::Resume`] that is still under way.
    login: Option<oneshot::Sender<()>>,
    /// Downloads of received files.
    media: media::MediaQueue,
}

impl Actor for PhoneSession {
    type Msg = PhoneMsg;
    type State = PhoneState;
    type Arguments = PhoneArgs;

    async fn pre_start(&self, myself: ActorRef<PhoneMsg>, args: PhoneArgs) -> Result<PhoneState, ActorProcessingErr> {
        let PhoneArgs {
            phone,
            shared,
            resume_after,
        } = args;
        let entry = shared
            .directory
            .get(&phone)
            .ok_or_else(|| format!("phone {phone} is not in the directory"))?;
        let me = myself.clone();
        let sink: EventSink = Arc::new(move |event| {
            // The actor may be gone (crashed or stopped): its events go nowhere.
            let _ = me.cast(PhoneMsg::Engine(event));
        });
        let session = shared.engine.open(&phone, sink).await?;
        let next_seq = messages::last_seq(&shared.db, &phone).await? + 1;
        let config = &shared.config;
        let pacing = config.pacing_on().then_some(Spacing {
            interval: config.messaging.send_interval,
            jitter: config.messaging.send_jitter,
        });
        let queue = SendQueue::start(
            Arc::clone(&session),
            myself.clone(),
            pacing,
            config.messaging.queue_size,
            config.http.request_timeout,
            config.phones.call_timeout,
        );
        let mut this = PhoneState {
            phone,
            shared,
            session,
            state: entry.state,
            pairing: None,
            waiters: Vec::new(),
            queue,
            next_seq,
            receipts: Vec::new(),
            login: None,
            media: media::MediaQueue::default(),
        };
        // Say only what is true now: nothing is connected yet in a fresh actor.
        let was = this.state.status;
        let next = match (resume_after, was.resumes(), this.session.is_linked()) {
            (Some(delay), true, true) => {
                this.resume_after(&myself, delay);
                Some((PhoneStatus::Connecting, this.state.last_error.clone()))
            }
            (_, true, false) if this.state.jid.is_some() => Some((
                PhoneStatus::LoggedOut,
                Some("the phone's stored link is missing; connect to pair it again".to_owned()),
            )),
            (_, true, false) => Some((PhoneStatus::Disconnected, this.state.last_error.clone())),
            (_, _, _)
                if matches!(
                    was,
                    PhoneStatus::Pairing | PhoneStatus::Connecting | PhoneStatus::Reconnecting | PhoneStatus::Connected
                ) =>
            {
                Some((PhoneStatus::Disconnected, this.state.last_error.clone()))
            }
            _ => None,
        };
        if let Some((status, last_error)) = next {
            this.state.status = status;
            this.state.last_error = last_error;
            if status != PhoneStatus::Connecting {
                this.state.connected_at = None;
            }
            this.publish().await;
        }
        Ok(this)
    }

    async fn post_stop(&self, _myself: ActorRef<PhoneMsg>, this: &mut PhoneState) -> Result<(), ActorProcessingErr> {
        // The stored status is left as it is, so a restart resumes what was online.
        this.session.close().await;
        this.flush_receipts().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PhoneMsg>,
        msg: PhoneMsg,
        this: &mut PhoneState,
    ) -> Result<(), ActorProcessingErr> {
        let result = this.handle(&myself, msg).await;
        if result.is_err() {
            // A failing handler stops the actor without `post_stop`: close the session
            // here, or its client would live on beside the restarted actor's.
            this.session.close().await;
            this.flush_receipts().await;
        }
        result
    }
}

impl PhoneState {
    async fn handle(&mut self, myself: &ActorRef<PhoneMsg>, msg: PhoneMsg) -> Result<(), ActorProcessingErr> {
        let this = self;
        let myself = myself.clone();
        match msg {
            PhoneMsg::Connect { mode, reply } => this.connect(&myself, mode, reply).await,
            PhoneMsg::Disconnect { reply } => {
                let result = this.session.disconnect().await;
                if result.is_ok() && this.state.status != PhoneStatus::LoggedOut {
                    this.state.status = PhoneStatus::Disconnected;
                    this.state.connected_at = None;
                    this.pairing = None;
                    this.publish().await;
                }
                this.answer_waiters();
                let _ = reply.send(result.map(|()| this.entry()).map_err(PhoneError::from));
            }
            PhoneMsg::Logout { reply } => {
                let result = this.session.logout().await;
                if result.is_ok() {
                    this.forget_identity(PhoneStatus::LoggedOut, None);
                    this.publish().await;
                }
                this.answer_waiters();
                let _ = reply.send(result.map(|()| this.entry()).map_err(PhoneError::from));
            }
            PhoneMsg::Engine(event) => return this.on_engine_event(&myself, event).await,
            PhoneMsg::ConnectWaitOver => this.answer_waiters(),
            PhoneMsg::Resume { done } if this.state.status == PhoneStatus::Connecting => {
                this.login = Some(done);
                if let Err(err) = this.session.connect(PairingMode::Qr).await {
                    this.state.status = PhoneStatus::Reconnecting;
                    this.state.last_error = Some(format!("cannot connect: {err}"));
                    this.publish().await;
                    // The engine could not even start: retry like a crash would.
                    return Err(err.into());
                }
            }
            PhoneMsg::Resume { .. } => {}
            PhoneMsg::Send { message, reply } => {
                if this.state.status == PhoneStatus::Connected {
                    this.queue.push(SendJob { message, reply });
                } else {
                    let _ = reply.send(Err(PhoneError::NotConnected));
                }
            }
            PhoneMsg::Sent { message, result, reply } => {
                let _ = reply.send(this.record_sent(message, result).await);
            }
            PhoneMsg::Typing { chat, typing, reply } => {
                this.query(
                    reply,
                    move |session| async move { session.set_typing(&chat, typing).await },
                );
            }
            PhoneMsg::MarkRead {
                chat,
                sender,
                ids,
                reply,
            } => {
                this.query(reply, move |session| async move {
                    session.mark_read(&chat, sender.as_ref(), &ids).await
                });
            }
            PhoneMsg::Lookup { numbers, reply } => this.lookup(numbers, reply),
            PhoneMsg::Groups { reply } => {
                this.query(reply, |session| async move { session.groups().await });
            }
            PhoneMsg::FlushReceipts => this.flush_receipts().await,
            PhoneMsg::FetchMedia(id) => this.retry_media(&myself, id),
            PhoneMsg::ResumeMedia(after) => this.resume_media(&myself, after).await,
            PhoneMsg::MediaFetched(fetched) => this.media_fetched(&myself, fetched).await,
            PhoneMsg::Group { jid, reply } => {
                this.query(reply, move |session| async move { session.group(&jid).await });
            }
        }
        Ok(())
    }
}

impl PhoneState {
    fn entry(&self) -> PhoneEntry {
        let mut entry = self.shared.directory.get(&self.phone).unwrap_or_else(|| PhoneEntry {
            phone: self.phone.clone(),
            country: None,
            created_at: Utc::now(),
            state: self.state.clone(),
            pairing: None,
        });
        entry.state = self.state.clone();
        entry.pairing = self.pairing.clone();
        entry
    }

    /// Once `phones.resume_concurrency` allows it (and `delay` passed), logs in with the
    /// stored link. The slot is held until the login is over or `phones.connect_wait`
    /// passed, so a phone that hangs does not hold up the others for long.
    fn resume_after(&self, myself: &ActorRef<PhoneMsg>, delay: Duration) {
        let logins = Arc::clone(&self.shared.logins);
        let wait = self.shared.config.phones.connect_wait;
        let me = myself.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Ok(_slot) = logins.acquire_owned().await else {
                return;
            };
            let (done, over) = oneshot::channel();
            if me.cast(PhoneMsg::Resume { done }).is_ok() {
                // Told, dropped (the actor moved on or stopped) or timed out: the slot is free.
                let _ = tokio::time::timeout(wait, over).await;
            }
        });
    }

    async fn publish(&mut self) {
        if self.state.status != PhoneStatus::Connecting
            && let Some(done) = self.login.take()
        {
            let _ = done.send(());
        }
        self.shared
            .publish(&self.phone, self.state.clone(), self.pairing.clone())
            .await;
    }

    fn answer_waiters(&mut self) {
        let entry = self.entry();
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Ok(entry.clone()));
        }
    }

    fn forget_identity(&mut self, status: PhoneStatus, last_error: Option<String>) {
        self.state = SessionState {
            status,
            jid: None,
            lid: None,
            push_name: None,
            connected_at: None,
            last_error,
        };
        self.pairing = None;
    }

    async fn connect(&mut self, myself: &ActorRef<PhoneMsg>, mode: PairingMode, reply: Reply<PhoneEntry>) {
        let status = self.state.status;
        let pairing_matches = matches!(
            (&self.pairing, mode),
            (Some(Pairing::Qr { .. }), PairingMode::Qr) | (Some(Pairing::Code { .. }), PairingMode::Code) | (None, _)
        );
        match status {
            PhoneStatus::Connected => {
                let _ = reply.send(Ok(self.entry()));
                return;
            }
            PhoneStatus::Connecting | PhoneStatus::Reconnecting => {
                self.waiters.push(reply);
                self.wait_for_news(myself);
                return;
            }
            PhoneStatus::Pairing if pairing_matches => {
                if self.pairing.is_some() {
                    let _ = reply.send(Ok(self.entry()));
                } else {
                    self.waiters.push(reply);
                    self.wait_for_news(myself);
                }
                return;
            }
            _ => {}
        }
        if let Err(err) = self.session.connect(mode).await {
            let _ = reply.send(Err(err.into()));
            return;
        }
        // Pairing starts once the first QR code or pairing code arrives; until then the
        // session is reaching WhatsApp.
        self.state.status = PhoneStatus::Connecting;
        self.state.last_error = None;
        self.pairing = None;
        self.publish().await;
        self.waiters.push(reply);
        self.wait_for_news(myself);
    }

    /// Runs an engine query on its own task, with a timeout, answering `reply` from there.
    fn query<T, F, Fut>(&self, reply: Reply<T>, op: F)
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Session>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, EngineError>> + Send,
    {
        if self.state.status != PhoneStatus::Connected {
            let _ = reply.send(Err(PhoneError::NotConnected));
            return;
        }
        let session = Arc::clone(&self.session);
        let timeout = self.shared.config.phones.call_timeout;
        tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, op(session)).await {
                Ok(result) => result.map_err(PhoneError::from),
                Err(_) => Err(PhoneError::Engine(EngineError::Timeout)),
            };
            let _ = reply.send(result);
        });
    }

    fn wait_for_news(&self, myself: &ActorRef<PhoneMsg>) {
        myself.send_after(self.shared.config.phones.connect_wait, || PhoneMsg::ConnectWaitOver);
    }

    async fn on_engine_event(
        &mut self,
        myself: &ActorRef<PhoneMsg>,
        event: EngineEvent,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            EngineEvent::QrCode { code, valid_for } => {
                let count = match &self.pairing {
                    Some(Pairing::Qr { count, .. }) => count + 1,
                    _ => 1,
                };
                self.state.status = PhoneStatus::Pairing;
                self.pairing = Some(Pairing::Qr {
                    code,
                    expires_at: Utc::now() + valid_for,
                    count,
                });
                self.publish().await;
                self.answer_waiters();
            }
            EngineEvent::PairingCode { code, valid_for } => {
                self.state.status = PhoneStatus::Pairing;
                self.pairing = Some(Pairing::Code {
                    code,
                    expires_at: Utc::now() + valid_for,
                });
                self.publish().await;
                self.answer_waiters();
            }
            EngineEvent::PairingFailed { reason } => {
                self.state.status = PhoneStatus::Disconnected;
                self.state.last_error = Some(reason);
                self.pairing = None;
                self.publish().await;
                self.answer_waiters();
            }
            EngineEvent::Paired => {
                // Linked: the session logs in with its new keys next. The QR code or
                // pairing code is spent.
                self.state.status = PhoneStatus::Connecting;
                self.state.last_error = None;
                self.pairing = None;
                self.publish().await;
            }
            EngineEvent::Stopped { reason, failed } => {
                self.state.status = if failed {
                    PhoneStatus::Failed
                } else {
                    PhoneStatus::Disconnected
                };
                self.state.last_error = Some(reason);
                self.state.connected_at = None;
                self.pairing = None;
                self.publish().await;
                self.answer_waiters();
            }
            EngineEvent::Connected(identity) => {
                self.state = SessionState {
                    status: PhoneStatus::Connected,
                    jid: Some(identity.jid.to_string()),
                    lid: identity.lid.map(|l| l.to_string()),
                    push_name: identity.push_name,
                    connected_at: Some(Utc::now()),
                    last_error: None,
                };
                self.pairing = None;
                self.publish().await;
                self.answer_waiters();
                self.resume_media(myself, 0).await;
            }
            EngineEvent::Disconnected { reason } => {
                if self.state.status == PhoneStatus::Connected {
                    self.state.status = PhoneStatus::Reconnecting;
                }
                self.state.last_error = Some(reason);
                self.publish().await;
                // A connect request waiting for a QR code learns why none came.
                self.answer_waiters();
            }
            EngineEvent::LoggedOut { reason } => {
                // The session has deleted its keys itself, after its client stopped; it
                // stays usable, so the next connect pairs anew.
                self.forget_identity(PhoneStatus::LoggedOut, Some(reason));
                self.publish().await;
                self.answer_waiters();
            }
            EngineEvent::Fatal { reason } => {
                tracing::warn!(phone = %self.phone, %reason, "the session is broken; restarting it");
                return Err(reason.into());
            }
            EngineEvent::Message(message, ack) => self.record_inbound(myself, *message, ack).await,
            EngineEvent::Receipt(receipt) => self.queue_receipt(myself, receipt),
            EngineEvent::Contacts(contacts) => self.record_contacts(contacts).await,
            EngineEvent::GroupsChanged { group } => self.shared.invalidate_groups(&self.phone, group),
        }
        Ok(())
    }
}
