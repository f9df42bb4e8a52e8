//! The phone actor's writes: inbound and outbound messages (numbered by `seq`), receipts
//! and contacts. An inbound message is stored, with the contact it reveals, in one
//! transaction before the engine is allowed to acknowledge it.

use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};

use std::time::Duration;

use ractor::ActorRef;

use super::{PhoneMsg, PhoneState};
use crate::actors::{PhoneError, Reply};
use crate::config::MediaConfig;
use crate::db::contacts::{self, Learnt};
use crate::db::messages::{self, Model as StoredMessage, NewMessage};
use crate::db::webhooks::delivery;
use crate::domain::{Details, Direction, MediaStatus, Message, MessageKind, MessageStatus, Service};
use crate::engine::{
    Ack, ContactInfo, EngineError, InboundContent, InboundMessage, Lookup, OutgoingContent, OutgoingMessage, Receipt,
    SentMessage,
};
use crate::events::{self, GatewayEvent};

/// A stored message, its event, and the event's webhook delivery when one is wanted.
type Written = (StoredMessage, GatewayEvent, Option<delivery::Model>);

/// How long receipts are gathered before they are written together.
pub const RECEIPT_BATCH: Duration = Duration::from_millis(25);

impl PhoneState {
    /// Re-reads the counter after a failed write, in case the row was written after all.
    async fn resync_seq(&mut self) {
        if let Ok(last) = messages::last_seq(&self.shared.db, &self.phone).await {
            self.next_seq = last + 1;
        }
    }

    pub(super) fn event(&self, kind: Service, row: &StoredMessage) -> GatewayEvent {
        GatewayEvent::new(
            kind,
            Some(self.phone.clone()),
            events::data(&events::MessageEventData::from(Message::from(row.clone()))),
        )
    }

    /// After the commit: the live stream gets the events, the dispatcher their deliveries.
    pub(super) fn announce(&self, events: Vec<GatewayEvent>, deliveries: Vec<delivery::Model>) {
        self.shared.outbox.dispatch(deliveries);
        for event in events {
            self.shared.events.publish(event);
        }
    }

    pub(super) async fn record_sent(
        &mut self,
        message: OutgoingMessage,
        result: Result<SentMessage, EngineError>,
    ) -> Result<StoredMessage, PhoneError> {
        let (message_id, timestamp, status) = match &result {
            Ok(sent) => (sent.id.clone(), sent.timestamp, MessageStatus::Sent),
            // Refused by WhatsApp: kept in history as failed, so the attempt is visible.
            Err(EngineError::Rejected(_)) => (
                message.id.clone().unwrap_or_else(crate::engine::new_message_id),
                chrono::Utc::now(),
                MessageStatus::Failed,
            ),
            Err(err) => return Err(err.clone().into()),
        };
        let own = self.state.jid.clone().unwrap_or_else(|| self.phone.jid().to_string());
        let mut new = outgoing_row(&message, message_id, own, timestamp);
        new.status = status;
        if let OutgoingContent::Media(media) = &message.content {
            self.keep_sent_media(&mut new, media.data.clone()).await;
        }
        let kind = if result.is_ok() {
            Service::MessageSent
        } else {
            Service::MessageStatus
        };
        let stored = match self.store_with_event(new, None, kind).await {
            Ok(stored) => stored,
            Err(err) => {
                self.resync_seq().await;
                return Err(err.into());
            }
        };
        let (row, event, delivery) = stored;
        self.announce(vec![event], delivery.into_iter().collect());
        if result.is_ok() {
            self.shared.metrics.messages_sent.inc();
        }
        result.map(|_| row).map_err(PhoneError::from)
    }

    /// Keeps the file of a message this phone sent, so the media route serves it too.
    async fn keep_sent_media(&self, new: &mut NewMessage, data: bytes::Bytes) {
        let (store, phone, id) = (self.shared.media.clone(), self.phone.clone(), new.message_id.clone());
        let kept = tokio::task::spawn_blocking(move || store.put(&phone, &id, &data)).await;
        match kept {
            Ok(Ok(kept)) => {
                new.media_status = Some(MediaStatus::Stored);
                new.media_sha256 = Some(kept.sha256);
            }
            Ok(Err(err)) => {
                tracing::warn!(phone = %self.phone, error = %err, "cannot keep a sent file");
                new.media_status = Some(MediaStatus::Failed);
                new.media_error = Some(format!("the file could not be kept: {err}"));
            }
            Err(err) => {
                new.media_status = Some(MediaStatus::Failed);
                new.media_error = Some(format!("the file could not be kept: {err}"));
            }
        }
    }

    pub(super) async fn record_inbound(&mut self, myself: &ActorRef<PhoneMsg>, message: InboundMessage, ack: Ack) {
        let chat = message.chat.to_string();
        let sender = message.sender.to_string();
        let lid = message.sender_lid.as_ref().map(ToString::to_string);
        let senders: Vec<&str> = std::iter::once(sender.as_str()).chain(lid.as_deref()).collect();
        match messages::is_stored(&self.shared.db, &self.phone, &senders, &message.id).await {
            // A redelivery of a stored message: acknowledge it again, emit nothing.
            Ok(true) => return ack.done(),
            Ok(false) => {}
            Err(err) => {
                // Not acknowledged: the engine delivers it again later.
                tracing::warn!(phone = %self.phone, error = %err, "cannot check an inbound message; not acknowledging it");
                return;
            }
        }
        let learnt = Learnt {
            jid: Some(message.sender.clone()),
            lid: message.sender_lid.as_ref().map(ToString::to_string),
            push_name: message.push_name.clone(),
            on_whatsapp: Some(true),
            ..Learnt::default()
        };
        let new = inbound_row(message, chat, sender, &self.shared.config.media);
        let kind = if new.direction == Direction::In {
            Service::MessageReceived
        } else {
            Service::MessageSent
        };
        let contact = (new.direction == Direction::In).then_some(learnt);
        match self.store_with_event(new, contact, kind).await {
            Ok((row, event, delivery)) => {
                ack.done();
                if row.direction == Direction::In {
                    self.shared.metrics.messages_received.inc();
                }
                self.announce(vec![event], delivery.into_iter().collect());
                if row.media_status == Some(MediaStatus::Pending) {
                    self.fetch_media(myself, row.id);
                }
            }
            Err(err) => {
                self.resync_seq().await;
                tracing::warn!(phone = %self.phone, error = %err, "cannot store an inbound message; not acknowledging it");
            }
        }
    }

    /// Stores a message, the contact it reveals and its event's webhook delivery together;
    /// the `seq` counter moves only once they are written. With nothing to write beside
    /// the message row, a single statement needs no transaction.
    async fn store_with_event(
        &mut self,
        new: NewMessage,
        contact: Option<Learnt>,
        kind: Service,
    ) -> Result<Written, DbErr> {
        let db = &self.shared.db;
        let written = if contact.is_some() || self.shared.outbox.wants(kind) {
            let txn = db.begin().await?;
            let written = self.write_with_event(&txn, new, contact, kind).await?;
            txn.commit().await?;
            written
        } else {
            self.write_with_event(db, new, None, kind).await?
        };
        self.next_seq += 1;
        Ok(written)
    }

    async fn write_with_event(
        &self,
        db: &impl ConnectionTrait,
        new: NewMessage,
        contact: Option<Learnt>,
        kind: Service,
    ) -> Result<Written, DbErr> {
        let row = messages::insert(db, &self.phone, self.next_seq, new).await?;
        if let Some(contact) = contact {
            contacts::upsert(db, &self.phone, &[contact]).await?;
        }
        let event = self.event(kind, &row);
        let delivery = self.shared.outbox.record(db, &event).await?;
        Ok((row, event, delivery))
    }

    /// Gathers a receipt; receipts are written together a moment later, so a busy phone
    /// makes one status update per batch instead of one per message.
    pub(super) fn queue_receipt(&mut self, myself: &ActorRef<PhoneMsg>, receipt: Receipt) {
        if self.receipts.is_empty() {
            myself.send_after(RECEIPT_BATCH, || PhoneMsg::FlushReceipts);
        }
        self.receipts.push(receipt);
    }

    pub(super) async fn flush_receipts(&mut self) {
        let receipts = std::mem::take(&mut self.receipts);
        // Delivered before read, so a batch holding both moves a message all the way.
        for status in [MessageStatus::Failed, MessageStatus::Delivered, MessageStatus::Read] {
            let ids: Vec<String> = receipts
                .iter()
                .filter(|r| r.status == status)
                .flat_map(|r| r.message_ids.iter().cloned())
                .collect();
            for chunk in ids.chunks(500) {
                match self.advance_with_events(chunk, status).await {
                    Ok((events, deliveries)) => self.announce(events, deliveries),
                    Err(err) => tracing::warn!(phone = %self.phone, error = %err, "cannot record receipts"),
                }
            }
        }
    }

    async fn advance_with_events(
        &self,
        ids: &[String],
        status: MessageStatus,
    ) -> Result<(Vec<GatewayEvent>, Vec<delivery::Model>), DbErr> {
        let txn = self.shared.db.begin().await?;
        let rows = messages::advance_status(&txn, &self.phone, ids, status).await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut deliveries = Vec::new();
        for row in &rows {
            let event = self.event(Service::MessageStatus, row);
            deliveries.extend(self.shared.outbox.record(&txn, &event).await?);
            events.push(event);
        }
        txn.commit().await?;
        Ok((events, deliveries))
    }

    pub(super) async fn record_contacts(&mut self, contacts: Vec<ContactInfo>) {
        let learnt: Vec<Learnt> = contacts
            .into_iter()
            .map(|c| Learnt {
                jid: Some(c.jid),
                lid: c.lid.map(|l| l.to_string()),
                name: c.name,
                push_name: c.push_name,
                on_whatsapp: None,
            })
            .collect();
        if let Err(err) = contacts::upsert(&self.shared.db, &self.phone, &learnt).await {
            tracing::warn!(phone = %self.phone, error = %err, "cannot store contacts");
        }
    }

    /// Looks numbers up on a task; those on WhatsApp become contacts.
    pub(super) fn lookup(&self, numbers: Vec<String>, reply: Reply<Vec<Lookup>>) {
        let db = self.shared.db.clone();
        let phone = self.phone.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.query(ractor::RpcReplyPort::from(tx), move |session| async move {
            session.lookup(&numbers).await
        });
        tokio::spawn(async move {
            let result: Result<Vec<Lookup>, PhoneError> = rx.await.unwrap_or(Err(PhoneError::Restarting));
            if let Ok(found) = &result {
                let learnt: Vec<Learnt> = found
                    .iter()
                    .filter(|l| l.exists)
                    .map(|l| Learnt {
                        jid: Some(l.jid.clone()),
                        lid: l.lid.as_ref().map(ToString::to_string),
                        on_whatsapp: Some(true),
                        ..Learnt::default()
                    })
                    .collect();
                if let Err(err) = contacts::upsert(&db, &phone, &learnt).await {
                    tracing::warn!(%phone, error = %err, "cannot store looked-up contacts");
                }
            }
            let _ = reply.send(result);
        });
    }
}

fn outgoing_row(
    message: &OutgoingMessage,
    message_id: String,
    own: String,
    timestamp: chrono::DateTime<chrono::Utc>,
) -> NewMessage {
    let (kind, body, mime, file_name, size) = match &message.content {
        OutgoingContent::Text(text) => (MessageKind::Text, Some(text.clone()), None, None, None),
        OutgoingContent::Media(media) => (
            media.kind.into(),
            media.caption.clone(),
            Some(media.mime.clone()),
            media.file_name.clone(),
            Some(i64::try_from(media.data.len()).unwrap_or(i64::MAX)),
        ),
        OutgoingContent::List(list) => (MessageKind::List, Some(list.body.clone()), None, None, None),
        OutgoingContent::Reaction { emoji, .. } if emoji.is_empty() => {
            (MessageKind::ReactionRemoved, None, None, None, None)
        }
        OutgoingContent::Reaction { emoji, .. } => (MessageKind::Reaction, Some(emoji.clone()), None, None, None),
        OutgoingContent::Location(place) => (MessageKind::Location, Some(place.text()), None, None, None),
        OutgoingContent::Contacts(cards) => (
            MessageKind::Contact,
            Some(Details::Contacts(cards.clone()).text()),
            None,
            None,
            None,
        ),
    };
    let details = match &message.content {
        OutgoingContent::Location(place) => Some(Details::Location(place.clone())),
        OutgoingContent::Contacts(cards) => Some(Details::Contacts(cards.clone())),
        _ => None,
    };
    let target_id = match &message.content {
        OutgoingContent::Reaction { target, .. } => Some(target.id.clone()),
        _ => None,
    };
    NewMessage {
        message_id,
        direction: Direction::Out,
        chat: message.to.to_string(),
        sender: own,
        kind,
        body,
        media_mime: mime,
        media_file_name: file_name,
        media_size: size,
        quoted_id: message.quoted_id.clone(),
        push_name: None,
        status: MessageStatus::Sent,
        timestamp,
        raw_kind: None,
        sender_lid: None,
        target_id,
        selected_id: None,
        media_ref: None,
        media_status: None,
        media_sha256: None,
        media_error: None,
        details,
    }
}

fn inbound_row(message: InboundMessage, chat: String, sender: String, config: &MediaConfig) -> NewMessage {
    let mut row = NewMessage {
        message_id: message.id,
        direction: if message.from_me { Direction::Out } else { Direction::In },
        chat,
        sender,
        kind: MessageKind::Unsupported,
        body: None,
        media_mime: None,
        media_file_name: None,
        media_size: None,
        quoted_id: message.quoted_id,
        push_name: message.push_name,
        status: if message.from_me {
            MessageStatus::Sent
        } else {
            MessageStatus::Received
        },
        timestamp: message.timestamp,
        raw_kind: None,
        sender_lid: message.sender_lid.map(|lid| lid.to_string()),
        target_id: None,
        selected_id: None,
        media_ref: None,
        media_status: None,
        media_sha256: None,
        media_error: None,
        details: None,
    };
    match message.content {
        InboundContent::Text(text) => {
            row.kind = MessageKind::Text;
            row.body = Some(text);
        }
        InboundContent::Unsupported { kind } => {
            row.kind = MessageKind::Unsupported;
            row.raw_kind = Some(kind);
        }
        InboundContent::Media {
            kind,
            mime,
            file_name,
            caption,
            size,
            stored,
        } => {
            row.kind = kind.into();
            row.body = caption;
            row.media_mime = Some(mime);
            row.media_file_name = file_name;
            row.media_size = size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            let (status, error) = match (&stored, config.skips(kind, size)) {
                (None, _) => (
                    MediaStatus::Failed,
                    Some("WhatsApp gave no file to download".to_owned()),
                ),
                (_, Some(reason)) => (MediaStatus::Skipped, Some(reason)),
                (_, None) => (MediaStatus::Pending, None),
            };
            row.media_status = Some(status);
            row.media_error = error;
            row.media_ref = stored.and_then(|r| serde_json::to_string(&r).ok());
        }
        InboundContent::Reaction { target_id, emoji } => {
            // A removed reaction is its own kind, not an empty one.
            row.kind = if emoji.is_some() {
                MessageKind::Reaction
            } else {
                MessageKind::ReactionRemoved
            };
            row.body = emoji;
            row.target_id = Some(target_id);
        }
        InboundContent::ListReply { row_id, title } => {
            row.kind = MessageKind::ListReply;
            row.body = title;
            row.selected_id = row_id;
        }
        InboundContent::Location(place) => {
            row.kind = MessageKind::Location;
            let details = Details::Location(place);
            row.body = Some(details.text());
            row.details = Some(details);
        }
        InboundContent::Contacts(cards) => {
            row.kind = MessageKind::Contact;
            let details = Details::Contacts(cards);
            row.body = Some(details.text());
            row.details = Some(details);
        }
        InboundContent::Other { kind, text } => {
            row.kind = kind;
            row.body = text;
        }
    }
    row
}
