//! A person's primary phone (device 0 of their account), as a real Signal participant:
//! a whatsapp-rust client inside the emulator, logged in with keys the emulator made for
//! it (its identity key is the account's), connected to the emulator like any device.
//! It decrypts what others send the account and encrypts what the person sends, so a
//! test sees exactly what reached the person: [`Phone::received`], [`Phone::receipts`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest as _;
use tokio::sync::watch;
use wacore::proto_helpers::MessageExt;
use wacore::store::traits::{DeviceStore, LidPnMappingEntry, ProtocolStore};
use wacore::store::{Device as Keys, InMemoryBackend};
use wacore_binary::Jid;
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;
use whatsapp_rust::Client;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::wacore::types::events::{Event, EventHandler};

use crate::network::{Account, Addressing, Device, Network, Registered, lock};

/// How long a phone may take to log in and upload its keys.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A message the phone received, as the person sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub id: String,
    /// Who sent it (a user JID, without device).
    pub from: String,
    /// The sender's other address (its phone number for a LID, and back), when told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_alt: Option<String>,
    pub chat: String,
    pub from_me: bool,
    /// The message's kind: `text`, `image`, `list`, `interactive`, `reaction`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_participant: Option<String>,
    /// For a reaction: the key of the message reacted to (`id`, `fromMe`, `participant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// For an interactive message: its native-flow buttons, as the phone opens them
    /// (`[{name, params}]`, `params` parsed from its JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<serde_json::Value>,
    pub at: DateTime<Utc>,
}

/// What a media message said about its file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSeen {
    pub kind: String,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    /// The SHA-256 the sender declared for the plaintext (hex).
    pub declared_sha256: Option<String>,
    /// The SHA-256 of what the phone downloaded and decrypted (hex).
    pub sha256: Option<String>,
    pub has_thumbnail: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub seconds: Option<u32>,
    pub voice_note: Option<bool>,
    pub file_name: Option<String>,
    pub caption: Option<String>,
}

/// A receipt for one of the phone's own messages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptSeen {
    pub ids: Vec<String>,
    /// `delivered`, `read`, `played`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub from: String,
    pub at: DateTime<Utc>,
}

pub struct Phone {
    pub client: Arc<Client>,
    /// Keeps the client running: dropping the handle aborts it.
    _handle: BotHandle,
    records: Arc<Records>,
}

/// What the phone saw, written by its event handler.
struct Records {
    received: Mutex<Vec<Received>>,
    /// The media messages among them, to download.
    media: Mutex<std::collections::HashMap<String, Arc<wa::Message>>>,
    receipts: Mutex<Vec<ReceiptSeen>>,
    connected: watch::Sender<bool>,
}

struct Events(Arc<Records>);

impl EventHandler for Events {
    fn handle_event(&self, event: Arc<Event>) {
        let phone = &self.0;
        match &*event {
            Event::Connected(_) => {
                phone.connected.send_replace(true);
            }
            Event::Disconnected(_) => {
                phone.connected.send_replace(false);
            }
            Event::Messages(batch) => {
                for m in batch.messages.iter() {
                    if let Some(seen) = received(&m.message, &m.info) {
                        if seen.media.is_some() {
                            lock(&phone.media).insert(seen.id.clone(), Arc::clone(&m.message));
                        }
                        lock(&phone.received).push(seen);
                    }
                }
            }
            Event::Receipt(receipt) => lock(&phone.receipts).push(ReceiptSeen {
                ids: receipt.message_ids.clone(),
                kind: format!("{:?}", receipt.r#type).to_lowercase(),
                from: receipt.source.chat.to_non_ad().to_string(),
                at: Utc::now(),
            }),
            _ => {}
        }
    }
}

/// The kind of a message, by the field that carries it.
pub fn kind_of(m: &wa::Message) -> &'static str {
    let m = m.get_base_message();
    let kinds: [(&'static str, bool); 30] = [
        ("text", m.conversation.is_some() || m.extended_text_message.is_set()),
        ("image", m.image_message.is_set()),
        ("videoNote", m.ptv_message.is_set()),
        ("video", m.video_message.is_set()),
        ("audio", m.audio_message.is_set()),
        ("document", m.document_message.is_set()),
        ("sticker", m.sticker_message.is_set()),
        ("reaction", m.reaction_message.is_set()),
        ("list", m.list_message.is_set()),
        ("listReply", m.list_response_message.is_set()),
        ("buttons", m.buttons_message.is_set()),
        ("buttonsReply", m.buttons_response_message.is_set()),
        ("interactive", m.interactive_message.is_set()),
        ("interactiveReply", m.interactive_response_message.is_set()),
        ("template", m.template_message.is_set()),
        ("templateReply", m.template_button_reply_message.is_set()),
        (
            "poll",
            m.poll_creation_message.is_set()
                || m.poll_creation_message_v2.is_set()
                || m.poll_creation_message_v3.is_set(),
        ),
        ("pollVote", m.poll_update_message.is_set()),
        ("location", m.location_message.is_set()),
        ("liveLocation", m.live_location_message.is_set()),
        ("contact", m.contact_message.is_set()),
        ("contacts", m.contacts_array_message.is_set()),
        ("protocol", m.protocol_message.is_set()),
        ("event", m.event_message.is_set()),
        ("album", m.album_message.is_set()),
        ("groupInvite", m.group_invite_message.is_set()),
        ("pin", m.pin_in_chat_message.is_set()),
        ("keepInChat", m.keep_in_chat_message.is_set()),
        ("senderKey", m.sender_key_distribution_message.is_set()),
        ("placeholder", m.placeholder_message.is_set()),
    ];
    kinds.iter().find(|(_, set)| *set).map_or("unknown", |(kind, _)| kind)
}

fn context(m: &wa::Message) -> Option<&wa::ContextInfo> {
    let m = m.get_base_message();
    m.extended_text_message
        .as_option()
        .and_then(|x| x.context_info.as_option())
        .or_else(|| m.image_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| m.video_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| m.audio_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| m.document_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| m.sticker_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| m.list_message.as_option().and_then(|x| x.context_info.as_option()))
        .or_else(|| {
            m.interactive_message
                .as_option()
                .and_then(|x| x.context_info.as_option())
        })
}

impl MediaSeen {
    /// What every media message says: its kind, type, size and declared hash.
    fn of(kind: &str, mime_type: &Option<String>, size: Option<u64>, sha256: &Option<Vec<u8>>) -> Self {
        Self {
            kind: kind.into(),
            mime_type: mime_type.clone(),
            size,
            declared_sha256: sha256.as_deref().map(hex_string),
            sha256: None,
            has_thumbnail: false,
            width: None,
            height: None,
            seconds: None,
            voice_note: None,
            file_name: None,
            caption: None,
        }
    }
}

fn media_seen(m: &wa::Message) -> Option<MediaSeen> {
    let m = m.get_base_message();
    let thumbnail = |t: &Option<Vec<u8>>| t.as_ref().is_some_and(|t| !t.is_empty());
    if let Some(x) = m.image_message.as_option() {
        return Some(MediaSeen {
            has_thumbnail: thumbnail(&x.jpeg_thumbnail),
            width: x.width,
            height: x.height,
            caption: x.caption.clone(),
            ..MediaSeen::of("image", &x.mimetype, x.file_length, &x.file_sha256)
        });
    }
    if let Some(x) = m.video_message.as_option().or(m.ptv_message.as_option()) {
        return Some(MediaSeen {
            has_thumbnail: thumbnail(&x.jpeg_thumbnail),
            width: x.width,
            height: x.height,
            seconds: x.seconds,
            caption: x.caption.clone(),
            ..MediaSeen::of("video", &x.mimetype, x.file_length, &x.file_sha256)
        });
    }
    if let Some(x) = m.audio_message.as_option() {
        return Some(MediaSeen {
            seconds: x.seconds,
            voice_note: x.ptt,
            ..MediaSeen::of("audio", &x.mimetype, x.file_length, &x.file_sha256)
        });
    }
    if let Some(x) = m.document_message.as_option() {
        return Some(MediaSeen {
            has_thumbnail: thumbnail(&x.jpeg_thumbnail),
            file_name: x.file_name.clone(),
            caption: x.caption.clone(),
            ..MediaSeen::of("document", &x.mimetype, x.file_length, &x.file_sha256)
        });
    }
    if let Some(x) = m.sticker_message.as_option() {
        return Some(MediaSeen {
            width: x.width,
            height: x.height,
            ..MediaSeen::of("sticker", &x.mimetype, x.file_length, &x.file_sha256)
        });
    }
    None
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn received(message: &wa::Message, info: &whatsapp_rust::wacore::types::message::MessageInfo) -> Option<Received> {
    let kind = kind_of(message);
    // Key distribution alone is the protocol's, not a message the person sees.
    if kind == "senderKey" {
        return None;
    }
    let base = message.get_base_message();
    let context = context(message);
    let text = message.text_content().map(str::to_owned).or_else(|| {
        base.list_message
            .as_option()
            .and_then(|l| l.description.clone())
            .or_else(|| {
                base.interactive_message
                    .as_option()
                    .and_then(|i| i.body.as_option())
                    .and_then(|b| b.text.clone())
            })
            .or_else(|| base.reaction_message.as_option().and_then(|r| r.text.clone()))
    });
    Some(Received {
        id: info.id.clone(),
        from: info.source.sender.to_non_ad().to_string(),
        from_alt: info.source.sender_alt.as_ref().map(|j| j.to_non_ad().to_string()),
        chat: info.source.chat.to_string(),
        from_me: info.source.is_from_me,
        kind: kind.to_owned(),
        text,
        media: media_seen(message),
        quoted_id: context.and_then(|c| c.stanza_id.clone()),
        quoted_participant: context.and_then(|c| c.participant.clone()),
        target: base
            .reaction_message
            .as_option()
            .and_then(|r| r.key.as_option())
            .map(|key| {
                serde_json::json!({"id": key.id, "fromMe": key.from_me, "participant": key.participant,
                    "chat": key.remote_jid})
            }),
        mentions: context.map(|c| c.mentioned_jid.clone()).unwrap_or_default(),
        buttons: buttons(base),
        at: Utc::now(),
    })
}

fn buttons(m: &wa::Message) -> Vec<serde_json::Value> {
    use wa::message::interactive_message::InteractiveMessage as Payload;
    let Some(Payload::NativeFlowMessage(flow)) = m
        .interactive_message
        .as_option()
        .and_then(|i| i.interactive_message.as_ref())
    else {
        return Vec::new();
    };
    flow.buttons
        .iter()
        .map(|b| {
            let params = b
                .button_params_json
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .unwrap_or_default();
            serde_json::json!({ "name": b.name, "params": params })
        })
        .collect()
}

/// The primary's own signed device identity (key index 0): a device-0 identity is the
/// account's, so it signs itself.
fn own_identity(account: &Account, keys: &Keys) -> Option<wa::ADVSignedDeviceIdentity> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(account.raw_id),
        timestamp: u64::try_from(crate::wire::now_secs()).ok(),
        key_index: Some(0),
        ..Default::default()
    }
    .encode_to_vec();
    let identity = keys.identity_key.public_key.public_key_bytes().to_vec();
    let account_signature = wacore::crypto::calculate_curve_signature(
        &keys.identity_key.private_key,
        &[&[6u8, 0][..], &details, &identity].concat(),
    )
    .ok()?;
    let device_signature = wacore::crypto::calculate_curve_signature(
        &keys.identity_key.private_key,
        &[&[6u8, 1][..], &details, &identity, &identity].concat(),
    )
    .ok()?;
    Some(wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(identity),
        account_signature: Some(account_signature.to_vec()),
        device_signature: Some(device_signature.to_vec()),
    })
}

impl Phone {
    /// Creates the account `phone` with its primary phone, and waits until the phone is
    /// online with its keys on the server (so others can write to it at once).
    pub async fn create(net: &Arc<Network>, phone: &str, name: &str, addressing: Addressing) -> anyhow::Result<String> {
        let url = net
            .addr
            .get()
            .map(|addr| format!("ws://{addr}/ws/chat"))
            .ok_or_else(|| anyhow::anyhow!("the emulator does not listen yet"))?;
        let mut keys = Keys::new();
        let mut account = Account::with_identity(phone, name, keys.identity_key.clone());
        account.addressing = addressing;
        let signed = own_identity(&account, &keys).ok_or_else(|| anyhow::anyhow!("cannot sign the phone"))?;
        keys.pn = Some(Jid::pn_device(account.phone.clone(), 0));
        keys.lid = Some(Jid::lid_device(account.lid.clone(), 0));
        keys.push_name = name.to_owned();
        keys.lid_migrated = addressing == Addressing::Lid;
        keys.account = Some(Arc::new(signed.clone()));
        let noise_key: [u8; 32] = keys
            .noise_key
            .public_key
            .public_key_bytes()
            .try_into()
            .map_err(|_| anyhow::anyhow!("a noise key is not 32 bytes"))?;
        let identity_key: [u8; 32] = keys
            .identity_key
            .public_key
            .public_key_bytes()
            .try_into()
            .map_err(|_| anyhow::anyhow!("an identity key is not 32 bytes"))?;
        let registered = Registered {
            name: "Phone".into(),
            platform: "ANDROID".into(),
            noise_key,
            identity_key,
            registration_id: keys.registration_id,
            signed_identity: signed.encode_to_vec(),
            key_index: 0,
        };
        account.devices.insert(0, Device::new(0, registered));
        let (number, lid) = (account.phone.clone(), account.lid.clone());
        {
            let mut state = net.state();
            if state.accounts.contains_key(&number) {
                anyhow::bail!("{number} already has an account");
            }
            state.accounts.insert(number.clone(), account);
        }
        let backend = InMemoryBackend::new();
        backend.save(&keys).await?;
        let now = Utc::now().timestamp();
        backend
            .put_lid_mapping(&LidPnMappingEntry {
                lid,
                phone_number: number.clone(),
                created_at: now,
                updated_at: now,
                learning_source: "pairing".into(),
            })
            .await?;
        let records = Arc::new(Records {
            received: Mutex::default(),
            media: Mutex::default(),
            receipts: Mutex::default(),
            connected: watch::channel(false).0,
        });
        let bot = Bot::builder()
            .with_backend(backend)
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(url))
            .with_http_client(crate::media::EmulatorHttp::new(net))
            .with_version((2, 3000, 1))
            .with_event_handler(Events(Arc::clone(&records)))
            .with_push_name(name)
            .skip_history_sync()
            .build()
            .await?;
        let handle = bot.spawn();
        let phone = Arc::new(Phone {
            client: handle.client(),
            _handle: handle,
            records,
        });
        if let Some(stored) = net.state().accounts.get_mut(&number) {
            stored.primary = Some(Arc::clone(&phone));
        }
        phone.ready(net, &number).await?;
        Ok(number)
    }

    /// Waits until the phone is online, its keys are on the server and it has been told
    /// its own device list (so a companion linked next cannot be lost to that answer).
    async fn ready(&self, net: &Network, phone: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let (keys, knows_devices) =
                net.state()
                    .accounts
                    .get(phone)
                    .and_then(|a| a.devices.get(&0))
                    .map_or((false, false), |d| {
                        (
                            d.keys.as_ref().is_some_and(|k| !k.one_time.is_empty()),
                            d.knows_own_devices,
                        )
                    });
            if keys && knows_devices && *self.records.connected.borrow() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("the phone of {phone} did not come online");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the phone received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.records.received).clone()
    }

    /// What the phone received, its media downloaded, decrypted and hashed.
    pub async fn received_with_media(&self) -> Vec<Received> {
        let pending: Vec<(String, Arc<wa::Message>)> = {
            let received = lock(&self.records.received);
            let media = lock(&self.records.media);
            received
                .iter()
                .filter(|r| r.media.as_ref().is_some_and(|m| m.sha256.is_none()))
                .filter_map(|r| Some((r.id.clone(), Arc::clone(media.get(&r.id)?))))
                .collect()
        };
        for (id, message) in pending {
            let Some(plain) = self.download(&message).await else {
                continue;
            };
            let digest = hex_string(&sha2::Sha256::digest(&plain));
            for seen in lock(&self.records.received).iter_mut().filter(|r| r.id == id) {
                if let Some(media) = seen.media.as_mut() {
                    media.sha256 = Some(digest.clone());
                }
            }
        }
        self.received()
    }

    async fn download(&self, message: &wa::Message) -> Option<Vec<u8>> {
        let m = message.get_base_message();
        let downloadable: &dyn wacore::download::Downloadable = if let Some(x) = m.image_message.as_option() {
            x
        } else if let Some(x) = m.video_message.as_option().or(m.ptv_message.as_option()) {
            x
        } else if let Some(x) = m.audio_message.as_option() {
            x
        } else if let Some(x) = m.document_message.as_option() {
            x
        } else {
            m.sticker_message.as_option()?
        };
        match self.client.download(downloadable).await {
            Ok(plain) => Some(plain),
            Err(err) => {
                tracing::warn!(error = %err, "a phone could not download media");
                None
            }
        }
    }

    /// Receipts for the phone's own messages, oldest first.
    pub fn receipts(&self) -> Vec<ReceiptSeen> {
        lock(&self.records.receipts).clone()
    }

    /// The person sends `message` to `to` (a user or group JID); `id` fixes its id.
    pub async fn send(&self, to: Jid, message: wa::Message, id: Option<String>) -> anyhow::Result<String> {
        let mut options = whatsapp_rust::SendOptions::default();
        if let Some(id) = id {
            options = options.with_message_id(id);
        }
        let sent = self.client.send_message_with_options(to, message, options).await?;
        Ok(sent.message_id)
    }

    /// The person opens the chat: read receipts for `ids` from `sender` in `chat`.
    pub async fn read(&self, chat: &Jid, sender: Option<&Jid>, ids: &[&str]) -> anyhow::Result<()> {
        self.client.mark_as_read(chat, sender, ids).await
    }
}
