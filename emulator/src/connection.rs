//! One client connection: the Noise handshake, then encrypted stanzas both ways until
//! either side closes. The task owns the WebSocket and the transport keys; the rest of
//! the emulator reaches it through its [`Conn`] handle (send a stanza, close, drop).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocketStream};
use tokio::sync::mpsc;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;
use wacore_noise::NoiseCipher;
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

use crate::network::{Command, Conn, Network, Registration, Role, digits};
use crate::noise::{self, Reply};
use crate::wire::{self, FrameStream, attr, now_secs};
use crate::{iq, pairing};

/// How long the handshake may take at each step.
const HANDSHAKE_STEP: Duration = Duration::from_secs(20);

type Sink = futures::stream::SplitSink<WebSocketStream, Message>;
type Stream = futures::stream::SplitStream<WebSocketStream>;

/// Serves one WebSocket until it closes.
pub async fn serve(net: Arc<Network>, socket: WebSocketStream) {
    let (sink, stream) = socket.split();
    let id = net.next_conn_id();
    if let Err(err) = run(&net, id, sink, stream).await {
        tracing::info!(conn = id, error = %err, "connection ended");
    }
    net.closed(id);
}

async fn next_binary(stream: &mut Stream) -> anyhow::Result<Vec<u8>> {
    loop {
        match tokio::time::timeout(HANDSHAKE_STEP, stream.next()).await {
            Err(_) => anyhow::bail!("the client went silent during the handshake"),
            Ok(None) => anyhow::bail!("the client closed the connection during the handshake"),
            Ok(Some(Err(err))) => anyhow::bail!("websocket error: {err}"),
            Ok(Some(Ok(Message::Binary(data)))) => return Ok(data),
            Ok(Some(Ok(Message::Close(_)))) => anyhow::bail!("the client closed the connection during the handshake"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn next_frame(frames: &mut FrameStream, stream: &mut Stream) -> anyhow::Result<Vec<u8>> {
    loop {
        if let Some(frame) = frames.next_frame() {
            return Ok(frame);
        }
        frames.feed(&next_binary(stream).await?);
    }
}

fn framed(payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    wacore_noise::framing::encode_frame(payload, None)
}

struct Link {
    sink: Sink,
    write: NoiseCipher,
    read: NoiseCipher,
    sent: u32,
    received: u32,
}

impl Link {
    async fn send(&mut self, node: &Node) -> anyhow::Result<()> {
        tracing::trace!(out = %wire::show(node));
        let plain = wire::encode_node(node)?;
        let sealed = self.write.encrypt_with_counter(self.sent, &plain)?;
        self.sent = self.sent.wrapping_add(1);
        self.sink.send(Message::Binary(framed(&sealed)?)).await?;
        Ok(())
    }

    fn open(&mut self, frame: Vec<u8>) -> anyhow::Result<Node> {
        let mut frame = frame;
        self.read.decrypt_in_place_with_counter(self.received, &mut frame)?;
        self.received = self.received.wrapping_add(1);
        Ok(wire::decode_node(&frame)?)
    }
}

async fn run(net: &Arc<Network>, id: u64, mut sink: Sink, mut stream: Stream) -> anyhow::Result<()> {
    let mut frames = FrameStream::default();
    frames.feed_first(&next_binary(&mut stream).await?)?;
    let hello = noise::decode_hello(&next_frame(&mut frames, &mut stream).await?)?;
    let established = match noise::respond(&net.keys, &hello)? {
        Reply::Done(done, server_hello) => {
            sink.send(Message::Binary(framed(&server_hello)?)).await?;
            *done
        }
        Reply::AwaitFinish(responder, server_hello) => {
            sink.send(Message::Binary(framed(&server_hello)?)).await?;
            let finish = next_frame(&mut frames, &mut stream).await?;
            noise::finish_xx(*responder, &finish)?
        }
    };
    tracing::debug!(
        conn = id,
        pattern = established.pattern.trim_end_matches('\0'),
        "handshake complete"
    );
    let mut link = Link {
        sink,
        write: established.write,
        read: established.read,
        sent: 0,
        received: 0,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let payload = established.payload;
    let conn = match (payload.username, payload.device_pairing_data.as_option()) {
        (Some(username), _) => {
            let device = u16::try_from(payload.device.unwrap_or(0)).unwrap_or(u16::MAX);
            let conn = Arc::new(Conn::new(
                id,
                established.client_static,
                Role::Device {
                    phone: username.to_string(),
                    id: device,
                },
                tx,
            ));
            match log_in(net, &conn, &username.to_string(), device) {
                Login::Accepted(success) => link.send(&success).await?,
                Login::Refused(failure) => {
                    link.send(&failure).await?;
                    let _ = link.sink.close().await;
                    return Ok(());
                }
            }
            conn
        }
        (None, Some(pairing_data)) => {
            let registration = registration(pairing_data, payload.push_name.clone());
            let conn = Arc::new(Conn::new(
                id,
                established.client_static,
                Role::Registering(registration),
                tx,
            ));
            net.state().conns.insert(id, Arc::clone(&conn));
            link.send(&pairing::offer_refs(net, &conn)).await?;
            conn
        }
        (None, None) => anyhow::bail!("the client payload neither logs in nor registers"),
    };
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    frames.feed(&data);
                    while let Some(frame) = frames.next_frame() {
                        let node = link.open(frame)?;
                        tracing::trace!(conn = id, r#in = %wire::show(&node));
                        for reply in handle(net, &conn, node) {
                            link.send(&reply).await?;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(err)) => anyhow::bail!("websocket error: {err}"),
                Some(Ok(_)) => {}
            },
            command = rx.recv() => match command {
                Some(Command::Send(node)) => link.send(&node).await?,
                Some(Command::Close { abrupt: true, .. }) => {
                    // Dropping the socket without a close frame is what a failing network does.
                    return Ok(());
                }
                Some(Command::Close { last, abrupt: false }) => {
                    if let Some(node) = last {
                        link.send(&node).await?;
                    }
                    let _ = link.sink.close().await;
                    return Ok(());
                }
                None => return Ok(()),
            },
        }
    }
}

fn registration(data: &wa::client_payload::DevicePairingRegistrationData, push_name: Option<String>) -> Registration {
    let props = data
        .device_props
        .as_deref()
        .and_then(|b| wa::DeviceProps::decode_from_slice(b).ok())
        .unwrap_or_default();
    Registration {
        identity_key: data
            .e_ident
            .as_deref()
            .and_then(|k| k.try_into().ok())
            .unwrap_or([0; 32]),
        registration_id: data
            .e_regid
            .as_deref()
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes),
        name: props
            .os
            .clone()
            .filter(|os| !os.is_empty())
            .unwrap_or_else(|| "Unknown device".into()),
        platform: props
            .platform_type
            .map_or_else(|| "UNKNOWN".to_owned(), |p| format!("{p:?}")),
        push_name: push_name.filter(|n| !n.is_empty()),
    }
}

/// The answer to a login: `<success>`, or the `<failure>` that refuses it.
enum Login {
    Accepted(Node),
    Refused(Node),
}

/// Checks a login against the account's linked devices. A second live connection of the
/// device replaces the first.
fn log_in(net: &Network, conn: &Arc<Conn>, phone: &str, device_id: u16) -> Login {
    let failure = |reason: u16| NodeBuilder::new("failure").attr("reason", reason.to_string()).build();
    let mut state = net.state();
    let now = chrono::Utc::now();
    let Some(account) = state.accounts.get_mut(phone) else {
        return Login::Refused(failure(401));
    };
    if let Some((until, code)) = account.banned {
        if until > now {
            let left = (until - now).num_seconds().max(1);
            return Login::Refused(
                NodeBuilder::new("failure")
                    .attr("reason", "402")
                    .attr("code", code.to_string())
                    .attr("expire", left.to_string())
                    .build(),
            );
        }
        account.banned = None;
    }
    let lid = account.lid.clone();
    let Some(device) = account.devices.get_mut(&device_id) else {
        return Login::Refused(failure(401));
    };
    if device.noise_key != conn.client_static {
        tracing::warn!(%phone, device = device_id, "a login with another device's key was refused");
        return Login::Refused(failure(401));
    }
    let previous = device.conn.replace(conn.id);
    device.last_seen_at = Some(now);
    let replaced = previous.and_then(|old| state.conns.get(&old).cloned());
    if let Some(old) = &replaced {
        state.double_connections += 1;
        tracing::warn!(
            %phone,
            device = device_id,
            old = old.id,
            new = conn.id,
            "two connections were open for one device; the older one is replaced"
        );
        old.close(Some(wire::stream_conflict("replaced")));
    }
    state.conns.insert(conn.id, Arc::clone(conn));
    Login::Accepted(
        NodeBuilder::new("success")
            .attr("t", now_secs().to_string())
            .attr("lid", format!("{lid}@lid"))
            .attr("props", "1")
            .build(),
    )
}

/// What a stanza from the client asks for: the stanzas to send back.
fn handle(net: &Arc<Network>, conn: &Arc<Conn>, node: Node) -> Vec<Node> {
    match node.tag.as_ref() {
        "iq" => match attr(&node, "type").as_deref() {
            Some("result" | "error") => {
                if let Some(node) = conn.answered(node) {
                    tracing::debug!(conn = conn.id, "an answer nobody waits for: {}", wire::show(&node));
                }
                Vec::new()
            }
            _ => iq::answer(net, conn, &node),
        },
        "presence" => {
            record_presence(net, conn, &node);
            Vec::new()
        }
        "message" => crate::routing::on_message(net, conn, &node),
        "receipt" => {
            crate::routing::on_receipt(net, conn, &node);
            vec![server_ack(&node)]
        }
        "ack" => {
            crate::routing::on_ack(net, conn, &node);
            Vec::new()
        }
        "chatstate" => {
            crate::routing::on_chatstate(net, conn, &node);
            Vec::new()
        }
        "ib" => Vec::new(),
        other => {
            tracing::debug!(conn = conn.id, tag = other, "ignored a stanza");
            Vec::new()
        }
    }
}

/// The server's `<ack>` of a message or receipt the client sent.
fn server_ack(node: &Node) -> Node {
    let mut ack = NodeBuilder::new("ack")
        .attr("class", node.tag.to_string())
        .attr("id", attr(node, "id").unwrap_or_default().into_owned())
        .attr("t", now_secs().to_string());
    if let Some(to) = attr(node, "to") {
        ack = ack.attr("from", to.into_owned());
    }
    if let Some(kind) = attr(node, "type").filter(|_| node.tag == "receipt") {
        ack = ack.attr("type", kind.into_owned());
    }
    ack.build()
}

fn record_presence(net: &Network, conn: &Conn, node: &Node) {
    let Role::Device { phone, id } = conn.role() else {
        return;
    };
    let Some(kind) = attr(node, "type").filter(|t| t == "available" || t == "unavailable") else {
        return;
    };
    let mut state = net.state();
    if let Some(device) = state
        .accounts
        .get_mut(&digits(&phone))
        .and_then(|a| a.devices.get_mut(&id))
    {
        if kind == "available" {
            device.available_count += 1;
        }
        device.presence = Some(kind.into_owned());
    }
}
