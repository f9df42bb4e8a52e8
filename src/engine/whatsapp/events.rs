//! From the crate's events to the gateway's: a synchronous [`Forwarder`] for connection,
//! pairing, receipt and contact events, and the durability [`Hook`] for messages, which
//! holds WhatsApp's acknowledgement until the gateway has stored each message.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use whatsapp_rust::Client;
use whatsapp_rust::InboundDurabilityHook;
use whatsapp_rust::wacore::types::events::{Event, EventHandler, InboundMessage as WaInbound};

use super::convert::{self, from_wa_jid};
use crate::engine::{Ack, ContactInfo, EngineEvent, EventSink, Identity};

/// How long the hook waits for the gateway to store a batch before leaving it unacked
/// (WhatsApp then delivers it again).
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Forwarder {
    sink: EventSink,
    client: Arc<OnceLock<Arc<Client>>>,
}

impl Forwarder {
    pub fn new(sink: EventSink) -> Self {
        Self {
            sink,
            client: Arc::default(),
        }
    }

    /// The client, for the account's identity once connected.
    pub fn attach(&self, client: Arc<Client>) {
        let _ = self.client.set(client);
    }

    fn identity(&self) -> Option<Identity> {
        let client = self.client.get()?;
        Some(Identity {
            jid: client.pn().as_ref().and_then(from_wa_jid)?,
            lid: client.lid().as_ref().and_then(from_wa_jid),
            push_name: Some(client.push_name()).filter(|n| !n.is_empty()),
        })
    }
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        let sink = &self.sink;
        match &*event {
            Event::PairingQrCode(qr) => sink(EngineEvent::QrCode {
                code: qr.code.clone(),
                valid_for: qr.timeout,
            }),
            Event::PairingCode(code) => sink(EngineEvent::PairingCode {
                code: code.code.clone(),
                valid_for: code.timeout,
            }),
            Event::PairingQrCodesExhausted(_) => sink(EngineEvent::PairingFailed {
                reason: "the QR code was not scanned in time".into(),
            }),
            Event::PairingCodeError(err) => sink(EngineEvent::PairingFailed {
                reason: format!("WhatsApp refused the pairing code request: {}", err.error),
            }),
            Event::PairError(err) => sink(EngineEvent::PairingFailed {
                reason: format!("pairing failed: {}", err.error),
            }),
            Event::Connected(_) => match self.identity() {
                Some(identity) => sink(EngineEvent::Connected(identity)),
                None => sink(EngineEvent::Disconnected {
                    reason: "connected, but WhatsApp did not tell the account's number yet".into(),
                }),
            },
            Event::Disconnected(d) => sink(EngineEvent::Disconnected {
                reason: format!("the connection to WhatsApp dropped ({}); reconnecting", d.reason),
            }),
            Event::LoggedOut(out) => sink(EngineEvent::LoggedOut {
                reason: format!("logged out by WhatsApp ({:?}); connect to pair again", out.reason),
            }),
            Event::StreamReplaced(_) => sink(EngineEvent::Disconnected {
                reason: "another client took over this session (stream replaced)".into(),
            }),
            Event::TemporaryBan(ban) => sink(EngineEvent::Disconnected {
                reason: format!(
                    "WhatsApp temporarily banned this number ({}); it expires in {:?}",
                    ban.code, ban.expire
                ),
            }),
            Event::ClientOutdated(_) => sink(EngineEvent::Disconnected {
                reason: "WhatsApp says this client version is outdated (405); update wagate".into(),
            }),
            Event::ConnectFailure(failure) => sink(EngineEvent::Disconnected {
                reason: format!("WhatsApp refused the connection ({:?})", failure.reason),
            }),
            Event::Messages(batch) if !batch.hook_committed => {
                // Newsletter and placeholder messages bypass the durability hook.
                for m in batch.messages.iter() {
                    if let Some(message) = convert::inbound(&m.message, &m.info) {
                        sink(EngineEvent::Message(Box::new(message), Ack::none()));
                    }
                }
            }
            Event::Receipt(receipt) => {
                if let Some(receipt) = convert::receipt(receipt) {
                    sink(EngineEvent::Receipt(receipt));
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

/// Commits inbound messages through the gateway before WhatsApp is acknowledged.
pub struct Hook {
    sink: EventSink,
}

impl Hook {
    pub fn new(sink: EventSink) -> Self {
        Self { sink }
    }
}

#[whatsapp_rust::async_trait]
impl InboundDurabilityHook for Hook {
    async fn on_messages(&self, _client: Arc<Client>, batch: &[WaInbound]) -> anyhow::Result<()> {
        let mut stored = Vec::with_capacity(batch.len());
        for m in batch {
            if let Some(message) = convert::inbound(&m.message, &m.info) {
                let (ack, rx) = Ack::new();
                (self.sink)(EngineEvent::Message(Box::new(message), ack));
                stored.push(rx);
            }
        }
        let all = futures::future::join_all(stored);
        match tokio::time::timeout(STORE_TIMEOUT, all).await {
            Ok(results) if results.iter().all(Result::is_ok) => Ok(()),
            _ => Err(anyhow::anyhow!(
                "the gateway did not store the messages; leaving them unacknowledged"
            )),
        }
    }
}
