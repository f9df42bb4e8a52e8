//! From the crate's events to the gateway's: a synchronous [`Forwarder`] for connection,
//! pairing, receipt and contact events, and the durability [`Hook`] for messages, which
//! holds WhatsApp's acknowledgement until the gateway has stored each message.
//!
//! The forwarder reports what the phone's actor shows through the sink, and what the
//! session itself must act on (the client's end, a new pairing code, the login) through
//! [`Control`]. It holds the client weakly: it is registered on that client's own event
//! bus, and a strong reference would keep every client alive for ever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use tokio_util::sync::CancellationToken;
use whatsapp_rust::Client;
use whatsapp_rust::InboundDurabilityHook;
use whatsapp_rust::wacore::types::events::{ConnectFailureReason, Event, EventHandler, InboundMessage as WaInbound};

use super::convert::{self, PhoneNumbers, from_wa_jid};
use crate::engine::{Ack, ContactInfo, EngineEvent, EventSink, Identity, MessageStatus, PairingMode, Receipt};

/// How long the hook waits for the gateway to store a batch before leaving it unacked
/// (WhatsApp then delivers it again).
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client's run ended, for the session to report once the client has stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The device was unlinked: the keys are deleted and pairing is needed again.
    LoggedOut { reason: String },
    /// Pairing ended without a link (the QR codes ran out, the code expired or was refused).
    PairingExpired { reason: String },
    /// The client stopped and will not reconnect by itself (replaced, banned, outdated).
    /// `failed` when connecting again cannot help until something changes.
    Stopped { reason: String, failed: bool },
}

/// What the session must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The client is about to stop for this reason.
    End(End),
    /// Pairing succeeded: the device is linked (the client logs in again next).
    Paired,
    /// Logged in and online.
    Connected,
    /// A pairing code is shown; it expires after `valid_for`.
    CodeShown { code: String, valid_for: Duration },
    /// WhatsApp retired the pairing code: a new one is needed.
    RefreshCode,
}

pub type ControlSink = Arc<dyn Fn(Control) + Send + Sync>;

/// Sends waiting for WhatsApp's server to accept or refuse them, by message id: the
/// server's ack (`None`) or its refusal code.
#[derive(Clone, Default)]
pub struct Acks(Arc<Mutex<HashMap<String, oneshot::Sender<Option<String>>>>>);

impl Acks {
    /// Waits for the server's answer to message `id` (call before sending it).
    pub fn wait(&self, id: &str) -> oneshot::Receiver<Option<String>> {
        let (tx, rx) = oneshot::channel();
        lock(&self.0).insert(id.to_owned(), tx);
        rx
    }

    /// Stops waiting for `id`: a later answer is reported as an event.
    pub fn forget(&self, id: &str) {
        lock(&self.0).remove(id);
    }

    /// Hands the answer to the send waiting for it; false when none waits.
    fn answer(&self, id: &str, error: Option<String>) -> bool {
        match lock(&self.0).remove(id) {
            Some(waiter) => waiter.send(error).is_ok(),
            None => false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Clone)]
pub struct Forwarder {
    sink: EventSink,
    control: ControlSink,
    mode: PairingMode,
    acks: Acks,
    client: Arc<OnceLock<Weak<Client>>>,
}

impl Forwarder {
    pub fn new(sink: EventSink, control: ControlSink, mode: PairingMode, acks: Acks) -> Self {
        Self {
            sink,
            control,
            mode,
            acks,
            client: Arc::default(),
        }
    }

    /// The client, for the account's identity once connected.
    pub fn attach(&self, client: &Arc<Client>) {
        let _ = self.client.set(Arc::downgrade(client));
    }

    fn identity(&self) -> Option<Identity> {
        let client = self.client.get()?.upgrade()?;
        Some(Identity {
            jid: client.pn().as_ref().and_then(from_wa_jid)?,
            lid: client.lid().as_ref().and_then(from_wa_jid),
            push_name: Some(client.push_name()).filter(|n| !n.is_empty()),
        })
    }

    fn end(&self, end: End) {
        (self.control)(Control::End(end));
    }
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        let sink = &self.sink;
        match &*event {
            // A phone pairing by code shows its code only: a QR code rotating beside it
            // would replace it on screen.
            Event::PairingQrCode(_) if self.mode == PairingMode::Code => {}
            Event::PairingQrCode(qr) => sink(EngineEvent::QrCode {
                code: qr.code.clone(),
                valid_for: qr.timeout,
            }),
            Event::PairingCode(code) => {
                sink(EngineEvent::PairingCode {
                    code: code.code.clone(),
                    valid_for: code.timeout,
                });
                (self.control)(Control::CodeShown {
                    code: code.code.clone(),
                    valid_for: code.timeout,
                });
            }
            Event::PairingCodeRefresh(_) => (self.control)(Control::RefreshCode),
            // With a code outstanding the client stays connected: the code is still good.
            Event::PairingQrCodesExhausted(exhausted) if self.mode == PairingMode::Code && !exhausted.disconnected => {}
            Event::PairingQrCodesExhausted(_) => self.end(End::PairingExpired {
                reason: match self.mode {
                    PairingMode::Qr => "the QR code was not scanned in time; connect to get a new one".into(),
                    PairingMode::Code => "the pairing code was not entered in time; connect to get a new one".into(),
                },
            }),
            Event::PairingCodeError(err) => self.end(End::PairingExpired {
                reason: format!("WhatsApp refused the pairing code request: {}", err.error),
            }),
            Event::PairError(err) => sink(EngineEvent::PairingFailed {
                reason: format!("pairing failed: {}", err.error),
            }),
            Event::PairSuccess(_) => {
                (self.control)(Control::Paired);
                sink(EngineEvent::Paired);
            }
            Event::Connected(_) => match self.identity() {
                Some(identity) => {
                    (self.control)(Control::Connected);
                    sink(EngineEvent::Connected(identity));
                }
                None => sink(EngineEvent::Disconnected {
                    reason: "connected, but WhatsApp did not tell the account's number yet".into(),
                }),
            },
            Event::Disconnected(d) => sink(EngineEvent::Disconnected {
                reason: format!("the connection to WhatsApp dropped ({}); reconnecting", d.reason),
            }),
            Event::LoggedOut(out) => {
                let told = out.logout_message.as_ref().map(|m| {
                    [m.header.as_deref(), m.subtext.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                let told = told.filter(|t| !t.is_empty()).map(|t| format!(" (WhatsApp says: {t})"));
                self.end(End::LoggedOut {
                    reason: format!(
                        "logged out: {}{}; connect to pair again",
                        failure_reason(&out.reason),
                        told.unwrap_or_default()
                    ),
                });
            }
            Event::StreamReplaced(_) => self.end(End::Stopped {
                reason: "another client took over this session (stream replaced); connect to take it back".into(),
                failed: false,
            }),
            Event::TemporaryBan(ban) => self.end(End::Stopped {
                reason: match ban.expire.to_std() {
                    Ok(left) => format!(
                        "WhatsApp temporarily banned this number ({}); the ban ends in {} (at {})",
                        ban.code,
                        humantime::format_duration(Duration::from_secs(left.as_secs())),
                        (chrono::Utc::now() + ban.expire).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                    Err(_) => format!("WhatsApp temporarily banned this number ({})", ban.code),
                },
                failed: true,
            }),
            Event::ClientOutdated(_) => self.end(End::Stopped {
                reason: "WhatsApp says this client version is outdated (405); update wagate".into(),
                failed: true,
            }),
            Event::ConnectFailure(failure) => sink(EngineEvent::Disconnected {
                reason: format!(
                    "WhatsApp refused the connection: {}{}",
                    failure_reason(&failure.reason),
                    failure.message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
                ),
            }),
            Event::Messages(batch) if !batch.hook_committed => {
                // Newsletter and placeholder messages bypass the durability hook.
                for m in batch.messages.iter() {
                    if let Some(message) = convert::inbound(&m.message, &m.info, &PhoneNumbers::default()) {
                        sink(EngineEvent::Message(Box::new(message), Ack::none()));
                    }
                }
            }
            Event::Receipt(receipt) => {
                if let Some(receipt) = convert::receipt(receipt) {
                    sink(EngineEvent::Receipt(receipt));
                }
            }
            // The server's answer to a message sent: to the send still waiting for it, or,
            // a refusal that came too late for it, as the message failing.
            Event::ServerAck(ack) if ack.class.as_deref().is_none_or(|c| c == "message") => {
                if !self.acks.answer(&ack.id, ack.error.clone())
                    && ack.error.is_some()
                    && let Some(chat) = ack.from.as_ref().and_then(from_wa_jid)
                {
                    sink(EngineEvent::Receipt(Receipt {
                        chat,
                        message_ids: vec![ack.id.clone()],
                        status: MessageStatus::Failed,
                        timestamp: ack.timestamp.unwrap_or_else(chrono::Utc::now),
                    }));
                }
            }
            Event::PushNameUpdate(update) => {
                if let Some(jid) = from_wa_jid(&update.jid) {
                    sink(EngineEvent::Contacts(vec![ContactInfo {
                        jid,
                        name: None,
                        push_name: Some(update.new_push_name.clone()),
                        lid: None,
                    }]));
                }
            }
            Event::ContactUpdate(update) => {
                if let Some(jid) = from_wa_jid(&update.jid) {
                    let action = &update.action;
                    sink(EngineEvent::Contacts(vec![ContactInfo {
                        jid,
                        name: action.full_name.clone().or_else(|| action.first_name.clone()),
                        push_name: None,
                        lid: action.lid_jid.as_deref().and_then(|l| l.parse().ok()),
                    }]));
                }
            }
            Event::GroupUpdate(update) => sink(EngineEvent::GroupsChanged {
                group: from_wa_jid(&update.group_jid),
            }),
            _ => {}
        }
    }
}

/// Why WhatsApp ended or refused a session, in words (the crate only gives the code).
fn failure_reason(reason: &ConnectFailureReason) -> String {
    match reason {
        ConnectFailureReason::LoggedOut => "the device was unlinked (on the phone, under Linked devices)".into(),
        ConnectFailureReason::UnknownLogout => "WhatsApp ended this linked device's session".into(),
        ConnectFailureReason::TempBanned => "the number is temporarily banned".into(),
        ConnectFailureReason::AccountLocked => "WhatsApp locked the account".into(),
        ConnectFailureReason::ClientOutdated => "this client version is outdated; update wagate".into(),
        ConnectFailureReason::ServiceUnavailable | ConnectFailureReason::InternalServerError => {
            "WhatsApp's service is unavailable for now".into()
        }
        other => format!("WhatsApp's reason {other:?}"),
    }
}

/// Commits inbound messages through the gateway before WhatsApp is acknowledged. A
/// session that stops cancels the wait: the batch stays unacknowledged (WhatsApp delivers
/// it again) and the client's shutdown is not held up by it.
pub struct Hook {
    sink: EventSink,
    stop: CancellationToken,
}

impl Hook {
    pub fn new(sink: EventSink, stop: CancellationToken) -> Self {
        Self { sink, stop }
    }
}

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for Hook {
    async fn on_messages(&self, client: Arc<Client>, batch: &[WaInbound]) -> anyhow::Result<()> {
        let numbers = phone_numbers(&client, batch).await;
        let mut stored = Vec::with_capacity(batch.len());
        for m in batch {
            if let Some(message) = convert::inbound(&m.message, &m.info, &numbers) {
                let (ack, rx) = Ack::new();
                (self.sink)(EngineEvent::Message(Box::new(message), ack));
                stored.push(rx);
            }
        }
        let all = futures::future::join_all(stored);
        tokio::select! {
            results = tokio::time::timeout(STORE_TIMEOUT, all) => match results {
                Ok(results) if results.iter().all(Result::is_ok) => Ok(()),
                _ => Err(anyhow::anyhow!("the gateway did not store the messages; leaving them unacknowledged")),
            },
            () = self.stop.cancelled() => Err(anyhow::anyhow!("the session is stopping; leaving the messages unacknowledged")),
        }
    }
}

/// The phone numbers of the LIDs a batch names without one, from the crate's LID↔PN
/// mapping (learnt from usync answers, earlier messages and the server's notifications).
async fn phone_numbers(client: &Client, batch: &[WaInbound]) -> PhoneNumbers {
    let mut numbers = PhoneNumbers::default();
    let lids: std::collections::HashSet<whatsapp_rust::Jid> =
        batch.iter().flat_map(|m| convert::unmapped_lids(&m.info)).collect();
    for lid in lids {
        match client.get_lid_pn_entry(&lid).await {
            Ok(Some(entry)) => numbers.insert(&lid.user, crate::domain::Jid::user(&entry.phone_number)),
            Ok(None) => {}
            Err(err) => tracing::debug!(%lid, error = %err, "cannot read the LID's phone number"),
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use whatsapp_rust::wacore::net::DisconnectReason;
    use whatsapp_rust::wacore::stanza::groups::GroupNotificationAction;
    use whatsapp_rust::wacore::types::events::{BatchOrigin, InboundMessage as WaInbound};
    use whatsapp_rust::wacore::types::events::{
        Connected, ContactUpdate, Disconnected, GroupUpdate, LoggedOut, LogoutMessage, MessageBatch, PairingQrCode,
        PairingQrCodesExhausted, PushNameUpdate, StreamReplaced, TempBanReason, TemporaryBan,
    };
    use whatsapp_rust::waproto::whatsapp as wa;

    use super::*;
    use crate::engine::InboundContent;
    use crate::engine::whatsapp::convert::tests::{info, jid};

    type Controls = Arc<Mutex<Vec<Control>>>;

    /// A forwarder whose events and controls land in lists.
    fn forwarder_for(mode: PairingMode) -> (Forwarder, Arc<Mutex<Vec<EngineEvent>>>, Controls) {
        let seen: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
        let controls: Controls = Arc::default();
        let sink_seen = Arc::clone(&seen);
        let sink: EventSink = Arc::new(move |event| sink_seen.lock().unwrap().push(event));
        let control_seen = Arc::clone(&controls);
        let control: ControlSink = Arc::new(move |c| control_seen.lock().unwrap().push(c));
        (Forwarder::new(sink, control, mode, Acks::default()), seen, controls)
    }

    fn forwarder() -> (Forwarder, Arc<Mutex<Vec<EngineEvent>>>) {
        let (f, seen, _) = forwarder_for(PairingMode::Qr);
        (f, seen)
    }

    /// The one control an event gave, with no event for the actor.
    fn control(
        forwarder: &Forwarder,
        seen: &Mutex<Vec<EngineEvent>>,
        controls: &Mutex<Vec<Control>>,
        event: Event,
    ) -> Control {
        forwarder.handle_event(Arc::new(event));
        assert!(seen.lock().unwrap().is_empty(), "{:?}", seen.lock().unwrap());
        let mut controls = controls.lock().unwrap();
        assert_eq!(controls.len(), 1, "{controls:?}");
        controls.pop().unwrap()
    }

    fn one(forwarder: &Forwarder, seen: &Mutex<Vec<EngineEvent>>, event: Event) -> EngineEvent {
        forwarder.handle_event(Arc::new(event));
        let mut seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.pop().unwrap()
    }

    fn wa_jid(s: &str) -> whatsapp_rust::Jid {
        s.parse().unwrap()
    }

    #[test]
    fn pairing_events_become_codes_and_failures() {
        let (f, seen, controls) = forwarder_for(PairingMode::Qr);
        let qr = PairingQrCode::builder()
            .code("2@abc,def".into())
            .timeout(Duration::from_secs(20))
            .build();
        match one(&f, &seen, Event::PairingQrCode(qr)) {
            EngineEvent::QrCode { code, valid_for } => {
                assert_eq!(code, "2@abc,def");
                assert_eq!(valid_for, Duration::from_secs(20));
            }
            other => panic!("{other:?}"),
        }
        let exhausted = PairingQrCodesExhausted::builder().disconnected(true).build();
        match control(&f, &seen, &controls, Event::PairingQrCodesExhausted(exhausted)) {
            Control::End(End::PairingExpired { reason }) => assert!(reason.contains("not scanned in time"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_phone_pairing_by_code_keeps_its_code_through_qr_rotations() {
        let (f, seen, controls) = forwarder_for(PairingMode::Code);
        let qr = PairingQrCode::builder()
            .code("2@abc,def".into())
            .timeout(Duration::from_secs(20))
            .build();
        f.handle_event(Arc::new(Event::PairingQrCode(qr)));
        assert!(seen.lock().unwrap().is_empty(), "a QR code replaced the pairing code");
        // The QR codes running out does not end a code that is still good.
        let exhausted = PairingQrCodesExhausted::builder().disconnected(false).build();
        f.handle_event(Arc::new(Event::PairingQrCodesExhausted(exhausted)));
        assert!(seen.lock().unwrap().is_empty());
        assert!(controls.lock().unwrap().is_empty());
        let refresh = whatsapp_rust::wacore::types::events::PairingCodeRefresh::builder()
            .force_manual(false)
            .build();
        assert_eq!(
            control(&f, &seen, &controls, Event::PairingCodeRefresh(refresh)),
            Control::RefreshCode
        );
    }

    #[test]
    fn connection_events_explain_themselves() {
        let (f, seen, controls) = forwarder_for(PairingMode::Qr);
        // Without the client there is no number to report: not "connected" yet.
        match one(&f, &seen, Event::Connected(Connected::builder().build())) {
            EngineEvent::Disconnected { reason } => assert!(reason.contains("did not tell"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let dropped = Disconnected::builder().reason(DisconnectReason::StreamEnded).build();
        match one(&f, &seen, Event::Disconnected(dropped)) {
            EngineEvent::Disconnected { reason } => assert!(reason.contains("reconnecting"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match control(
            &f,
            &seen,
            &controls,
            Event::StreamReplaced(StreamReplaced::builder().build()),
        ) {
            Control::End(End::Stopped { reason, failed: false }) => {
                assert!(reason.contains("another client"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let ban = TemporaryBan::builder()
            .code(TempBanReason::SentToTooManyPeople)
            .expire(chrono::TimeDelta::hours(25))
            .build();
        match control(&f, &seen, &controls, Event::TemporaryBan(ban)) {
            Control::End(End::Stopped { reason, failed: true }) => {
                assert!(reason.contains("temporarily banned"), "{reason}");
                assert!(reason.contains("too many messages"), "{reason}");
                assert!(reason.contains("ends in 1day 1h"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_logout_needs_pairing_again() {
        let (f, seen, controls) = forwarder_for(PairingMode::Qr);
        let out = LoggedOut::builder()
            .on_connect(false)
            .reason(ConnectFailureReason::LoggedOut)
            .build();
        match control(&f, &seen, &controls, Event::LoggedOut(out)) {
            Control::End(End::LoggedOut { reason }) => assert_eq!(
                reason,
                "logged out: the device was unlinked (on the phone, under Linked devices); connect to pair again"
            ),
            other => panic!("{other:?}"),
        }
        let locked = LoggedOut::builder()
            .on_connect(true)
            .reason(ConnectFailureReason::AccountLocked)
            .logout_message(
                LogoutMessage::builder()
                    .header("Your account is locked".into())
                    .subtext("Verify it on your phone.".into())
                    .build(),
            )
            .build();
        match control(&f, &seen, &controls, Event::LoggedOut(locked)) {
            Control::End(End::LoggedOut { reason }) => assert_eq!(
                reason,
                "logged out: WhatsApp locked the account (WhatsApp says: Your account is locked Verify it on \
                 your phone.); connect to pair again"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn push_names_and_address_book_entries_become_contacts() {
        let (f, seen) = forwarder();
        let push = PushNameUpdate::builder()
            .jid(wa_jid("12015550150@s.whatsapp.net"))
            .message(Box::new(info("12015550150@s.whatsapp.net")))
            .old_push_name("Al".into())
            .new_push_name("Alice".into())
            .build();
        match one(&f, &seen, Event::PushNameUpdate(push)) {
            EngineEvent::Contacts(contacts) => {
                assert_eq!(contacts.len(), 1);
                assert_eq!(contacts[0].jid, jid("12015550150@s.whatsapp.net"));
                assert_eq!(contacts[0].push_name.as_deref(), Some("Alice"));
                assert_eq!(contacts[0].name, None);
            }
            other => panic!("{other:?}"),
        }
        let book = ContactUpdate::builder()
            .jid(wa_jid("12015550151@s.whatsapp.net"))
            .timestamp(Utc::now())
            .action(Box::new(wa::sync_action_value::ContactAction {
                full_name: Some("Bob Builder".into()),
                first_name: Some("Bob".into()),
                lid_jid: Some("98765432109876@lid".into()),
                ..Default::default()
            }))
            .from_full_sync(true)
            .build();
        match one(&f, &seen, Event::ContactUpdate(book)) {
            EngineEvent::Contacts(contacts) => {
                assert_eq!(contacts[0].jid, jid("12015550151@s.whatsapp.net"));
                assert_eq!(contacts[0].name.as_deref(), Some("Bob Builder"));
                assert_eq!(contacts[0].lid, Some(jid("98765432109876@lid")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_group_update_invalidates_that_group() {
        let (f, seen) = forwarder();
        let update = GroupUpdate::builder()
            .group_jid(wa_jid("120363000000000001@g.us"))
            .timestamp(Utc::now())
            .is_lid_addressing_mode(false)
            .action(GroupNotificationAction::Subject {
                subject: "Team".into(),
                subject_owner: None,
                subject_time: None,
            })
            .build();
        match one(&f, &seen, Event::GroupUpdate(update)) {
            EngineEvent::GroupsChanged { group } => assert_eq!(group, Some(jid("120363000000000001@g.us"))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_goes_to_the_waiting_send_or_fails_the_message_later() {
        use whatsapp_rust::wacore::types::events::ServerAck;
        let acks = Acks::default();
        let seen: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
        let sink_seen = Arc::clone(&seen);
        let sink: EventSink = Arc::new(move |event| sink_seen.lock().unwrap().push(event));
        let f = Forwarder::new(sink, Arc::new(|_| {}), PairingMode::Qr, acks.clone());
        let ack = |id: &str, error: Option<&str>| {
            Arc::new(Event::ServerAck(
                ServerAck::builder()
                    .id(id.into())
                    .class("message".into())
                    .from(wa_jid("12015550150@s.whatsapp.net"))
                    .maybe_error(error.map(Into::into))
                    .build(),
            ))
        };
        let mut waiting = acks.wait("3EB0WAITING");
        f.handle_event(ack("3EB0WAITING", Some("479")));
        assert_eq!(waiting.try_recv().unwrap().as_deref(), Some("479"));
        // Nobody waits any more: a refusal fails the message, an acceptance says nothing.
        f.handle_event(ack("3EB0LATE", Some("479")));
        f.handle_event(ack("3EB0FINE", None));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        match &seen[0] {
            EngineEvent::Receipt(r) => {
                assert_eq!(r.message_ids, ["3EB0LATE"]);
                assert_eq!(r.status, MessageStatus::Failed);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_the_hook_did_not_commit_are_forwarded_once() {
        let (f, seen) = forwarder();
        let message = WaInbound::builder()
            .message(Arc::new(wa::Message {
                conversation: Some("from a newsletter".into()),
                ..Default::default()
            }))
            .info(Arc::new(info("12015550150@s.whatsapp.net")))
            .build();
        let batch = |committed: bool| {
            MessageBatch::builder()
                .messages(Arc::from(vec![message.clone()]))
                .origin(BatchOrigin::Live)
                .hook_committed(committed)
                .build()
        };
        match one(&f, &seen, Event::Messages(batch(false))) {
            EngineEvent::Message(message, _) => {
                assert_eq!(message.content, InboundContent::Text("from a newsletter".into()));
                assert_eq!(message.id, "3EB0FROMTHEM");
            }
            other => panic!("{other:?}"),
        }
        // Already stored through the durability hook: not a second time.
        f.handle_event(Arc::new(Event::Messages(batch(true))));
        assert!(seen.lock().unwrap().is_empty());
    }
}
