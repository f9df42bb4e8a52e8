//! Carrying messages and receipts between devices, as WhatsApp's servers do. The server
//! cannot read what it carries: a `<message>` holds one encrypted copy per recipient
//! device (`<participants><to jid=…><enc>`), and each device gets its own copy, from the
//! sender's device. What a device has not acknowledged (a receipt or an ack for a
//! message, an ack for a receipt or notification) stays in its inbox: sent at once when
//! it is online, and again, with the rest of its offline queue, when it logs in.
//!
//! Addressing follows the sender: a message written to a LID (`…@lid`) arrives from the
//! sender's LID with its phone number beside it (`sender_pn`), one written to a phone
//! number arrives from the sender's number with its LID beside it (`sender_lid`). An
//! account that is LID-addressed ([`Addressing::Lid`]) always arrives from its LID.

use std::collections::BTreeMap;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;

use crate::network::{Account, Addressing, Conn, Network, Pending, Role, State, device_of, split_jid};
use crate::wire::{attr, child, children, now_secs};

/// Hands `node` to device `device` of account `phone`: sent now if it is online, kept in
/// its inbox until it acknowledges it.
pub fn deliver(state: &mut State, phone: &str, device: u16, class: &'static str, node: Node) {
    let id = attr(&node, "id").unwrap_or_default().into_owned();
    let Some(target) = state.accounts.get_mut(phone).and_then(|a| a.devices.get_mut(&device)) else {
        return;
    };
    // A copy sent again (a retry) replaces the one waiting.
    target.inbox.retain(|p| !(p.class == class && p.id == id));
    target.inbox.push(Pending {
        class,
        id,
        node: node.clone(),
    });
    if let Some(conn) = target.conn.and_then(|c| state.conns.get(&c)) {
        conn.send(node);
    }
}

/// What waited for a device that logs in, marked as offline, then the end of the queue.
pub fn offline_queue(net: &Network, phone: &str, device: u16) -> Vec<Node> {
    let state = net.state();
    let waiting: Vec<Node> = state
        .accounts
        .get(&crate::network::digits(phone))
        .and_then(|a| a.devices.get(&device))
        .map(|d| d.inbox.iter().map(|p| p.node.clone()).collect())
        .unwrap_or_default();
    let count = waiting.len();
    let mut out: Vec<Node> = waiting
        .into_iter()
        .map(|mut node| {
            node.attrs.insert("offline", "1".to_owned());
            node
        })
        .collect();
    out.push(
        NodeBuilder::new("ib")
            .children([NodeBuilder::new("offline").attr("count", count.to_string()).build()])
            .build(),
    );
    out
}

/// The device a connection belongs to.
fn sender(conn: &Conn) -> Option<(String, u16)> {
    match conn.role() {
        Role::Device { phone, id } => Some((crate::network::digits(&phone), id)),
        _ => None,
    }
}

/// The server's `<ack>` of a message, refusing it with `error` if given.
fn message_ack(node: &Node, error: Option<u16>) -> Node {
    let mut ack = NodeBuilder::new("ack")
        .attr("class", "message")
        .attr("id", attr(node, "id").unwrap_or_default().into_owned())
        .attr("t", now_secs().to_string());
    if let Some(to) = attr(node, "to") {
        ack = ack.attr("from", to.into_owned());
    }
    if let Some(code) = error {
        ack = ack.attr("error", code.to_string());
    }
    ack.build()
}

/// A `<message>` a device sends: delivered to every device it holds a copy for, then
/// acknowledged to the sender (or refused, as a test asked the server to).
pub fn on_message(net: &Network, conn: &Conn, node: &Node) -> Vec<Node> {
    let Some((phone, device)) = sender(conn) else {
        return Vec::new();
    };
    let to = attr(node, "to").unwrap_or_default().into_owned();
    let (_, server) = split_jid(&to);
    let mut state = net.state();
    let refused = match server.as_str() {
        "g.us" => crate::groups::on_message(&mut state, &phone, device, &to, node),
        "broadcast" => {
            broadcast(&mut state, &phone, device, &to, node);
            None
        }
        "newsletter" => None,
        _ => direct(&mut state, &phone, device, &to, node),
    };
    vec![message_ack(node, refused)]
}

/// Tells every device on the network that account `phone` gained or lost (`op`: `add`,
/// `remove`) device `device`, as WhatsApp does when a device is linked or unlinked: the
/// account's other devices and the people who write to it then encrypt for the right
/// devices (a cached device list would miss a new companion).
pub fn devices_changed(state: &mut State, phone: &str, device: u16, op: &'static str) {
    let Some(account) = state.accounts.get(phone) else {
        return;
    };
    let (from, lid, changed) = (
        account.jid(),
        account.lid_jid(),
        account.device_on("s.whatsapp.net", device),
    );
    let t = now_secs();
    let targets: Vec<(String, u16)> = state
        .accounts
        .values()
        .flat_map(|a| a.devices.keys().map(|d| (a.phone.clone(), *d)))
        .filter(|(p, d)| !(p == phone && *d == device))
        .collect();
    for (target, target_device) in targets {
        let node = NodeBuilder::new("notification")
            .attr("from", from.clone())
            .attr("lid", lid.clone())
            .attr("type", "devices")
            .attr(
                "id",
                format!("devices.{phone}.{device}.{op}.{t}.{target}.{target_device}"),
            )
            .attr("t", t.to_string())
            .children([NodeBuilder::new(op)
                .children([
                    NodeBuilder::new("device").attr("jid", changed.clone()).build(),
                    NodeBuilder::new("key-index-list").attr("ts", t.to_string()).build(),
                ])
                .build()])
            .build();
        deliver(state, &target, target_device, "notification", node);
    }
}

/// The copies a message holds: for each recipient device named in `<participants>` (or
/// the one device a resend is addressed to), its `<enc>` elements.
fn copies(to: &str, node: &Node) -> Vec<(String, Vec<Node>)> {
    let encs = |n: &Node| -> Vec<Node> { children(n).iter().filter(|c| c.tag == "enc").cloned().collect() };
    let mut out: Vec<(String, Vec<Node>)> = child(node, "participants")
        .map(children)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.tag == "to")
        .filter_map(|c| Some((attr(c, "jid")?.into_owned(), encs(c))))
        .filter(|(_, encs)| !encs.is_empty())
        .collect();
    let direct = encs(node);
    if out.is_empty() && !direct.is_empty() {
        out.push((to.to_owned(), direct));
    }
    out
}

/// The attributes a delivered copy keeps from the sent message.
fn kept(node: &Node, mut copy: NodeBuilder) -> NodeBuilder {
    for key in ["type", "edit", "category", "push_priority"] {
        if let Some(value) = attr(node, key) {
            copy = copy.attr(key, value.into_owned());
        }
    }
    copy
}

/// `server` as the sender's account is addressed to others: its own choice for a
/// LID-addressed account, else the form the message was written to.
fn sender_server(account: &Account, written_to: &str) -> &'static str {
    if account.addressing == Addressing::Lid || written_to == "lid" {
        "lid"
    } else {
        "s.whatsapp.net"
    }
}

/// A message to a person (and the sender's own other devices).
fn direct(state: &mut State, phone: &str, device: u16, to: &str, node: &Node) -> Option<u16> {
    let (_, server) = split_jid(to);
    let target = state.account_of(to).map(|a| a.phone.clone())?;
    if let Some(target) = state.accounts.get_mut(&target)
        && let Some((code, left)) = target.refuse
    {
        target.refuse = (left > 1).then(|| (code, left - 1));
        tracing::info!(to, code, "the server refused a message, as asked");
        return Some(code);
    }
    let account = state.accounts.get(phone)?;
    let from_server = sender_server(account, &server);
    let from = account.device_on(from_server, device);
    let alt = if from_server == "lid" {
        ("sender_pn", account.jid())
    } else {
        ("sender_lid", account.lid_jid())
    };
    let name = account.name.clone();
    let identity = child(node, "device-identity").cloned();
    let id = attr(node, "id").unwrap_or_default().into_owned();
    let t = now_secs().to_string();
    let copies = copies(to, node);
    tracing::debug!(from = %phone, to, devices = ?copies.iter().map(|(jid, _)| jid.as_str()).collect::<Vec<_>>(), "a direct message");
    for (jid, encs) in copies {
        let Some(recipient) = state.account_of(&jid).map(|a| a.phone.clone()) else {
            continue;
        };
        let recipient_device = device_of(&jid);
        let own = recipient == phone;
        let mut copy = kept(node, NodeBuilder::new("message"))
            .attr("id", id.clone())
            .attr("t", t.clone())
            .attr("notify", name.clone());
        copy = if own {
            // The sender's other devices see what it sent, and to whom.
            let own_from = state
                .accounts
                .get(phone)
                .map(|a| a.device_on(&server, device))
                .unwrap_or_default();
            let (user, _) = split_jid(to);
            copy.attr("from", own_from)
                .attr("recipient", format!("{user}@{server}"))
        } else {
            copy.attr("from", from.clone()).attr(alt.0, alt.1.clone())
        };
        let mut content = encs;
        content.extend(identity.clone());
        deliver(
            state,
            &recipient,
            recipient_device,
            "message",
            copy.children(content).build(),
        );
    }
    None
}

/// The pairwise copies a message carries, by recipient device (account phone, device).
pub fn pairwise(state: &State, node: &Node) -> BTreeMap<(String, u16), Vec<Node>> {
    let mut out: BTreeMap<(String, u16), Vec<Node>> = BTreeMap::new();
    for to in child(node, "participants").map(children).unwrap_or_default() {
        let Some(jid) = attr(to, "jid").filter(|_| to.tag == "to") else {
            continue;
        };
        let encs: Vec<Node> = children(to).iter().filter(|e| e.tag == "enc").cloned().collect();
        if let (Some(account), false) = (state.account_of(&jid), encs.is_empty()) {
            out.entry((account.phone.clone(), device_of(&jid)))
                .or_default()
                .extend(encs);
        }
    }
    out
}

/// A message to many (a group, a status post): every device of every recipient gets the
/// shared copy (`<enc type="skmsg">`) and, if the message holds one for it, its pairwise
/// copy (which carries the sender key). `header` makes each copy's attributes.
pub fn fan_out(
    state: &mut State,
    from: (&str, u16),
    recipients: &[String],
    node: &Node,
    header: &dyn Fn(NodeBuilder) -> NodeBuilder,
) {
    let shared: Vec<Node> = children(node).iter().filter(|c| c.tag == "enc").cloned().collect();
    let identity = child(node, "device-identity").cloned();
    let mut pairwise = pairwise(state, node);
    let devices: Vec<(String, u16)> = recipients
        .iter()
        .filter_map(|phone| state.accounts.get(phone))
        .flat_map(|a| a.devices.keys().map(|d| (a.phone.clone(), *d)).collect::<Vec<_>>())
        .filter(|(phone, device)| !(phone == from.0 && *device == from.1))
        .collect();
    for (phone, device) in devices {
        let mut content = pairwise.remove(&(phone.clone(), device)).unwrap_or_default();
        content.extend(shared.iter().cloned());
        content.extend(identity.clone());
        let copy = header(kept(node, NodeBuilder::new("message")))
            .children(content)
            .build();
        deliver(state, &phone, device, "message", copy);
    }
}

/// A status post (`status@broadcast`): to every account it names, from the broadcast,
/// with the poster (by LID) as participant.
fn broadcast(state: &mut State, phone: &str, device: u16, to: &str, node: &Node) {
    let Some(account) = state.accounts.get(phone) else {
        return;
    };
    let (participant, participant_pn, name) = (account.device_on("lid", device), account.jid(), account.name.clone());
    let mut recipients: Vec<String> = child(node, "participants")
        .map(children)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| attr(c, "jid"))
        .filter_map(|jid| state.account_of(&jid).map(|a| a.phone.clone()))
        .collect();
    recipients.sort();
    recipients.dedup();
    let (id, t) = (
        attr(node, "id").unwrap_or_default().into_owned(),
        now_secs().to_string(),
    );
    let header = move |copy: NodeBuilder| {
        copy.attr("from", to.to_owned())
            .attr("participant", participant.clone())
            .attr("participant_pn", participant_pn.clone())
            .attr("id", id.clone())
            .attr("t", t.clone())
            .attr("notify", name.clone())
    };
    fan_out(state, (phone, device), &recipients, node, &header);
}

/// A `<receipt>` a device sends: what it acknowledges leaves its inbox, and the receipt
/// goes on to the devices of the message's sender.
/// A device shows (or stops showing) "typing…" to someone: `<chatstate to=…><composing/>`.
/// The server keeps the latest state per sender on the recipient's account.
pub fn on_chatstate(net: &Network, conn: &Conn, node: &Node) {
    let Some((phone, _)) = sender(conn) else {
        return;
    };
    let to = attr(node, "to").unwrap_or_default().into_owned();
    let Some(state_name) = children(node).first().map(|c| c.tag.to_string()) else {
        return;
    };
    let state_name = match state_name.as_str() {
        "composing"
            if child(node, "composing")
                .and_then(|c| attr(c, "media"))
                .is_some_and(|m| m == "audio") =>
        {
            "recording".to_owned()
        }
        _ => state_name,
    };
    let mut state = net.state();
    if let Some(target) = state.account_of_mut(&to) {
        target.chatstates.insert(phone, state_name);
    }
}

pub fn on_receipt(net: &Network, conn: &Conn, node: &Node) {
    let Some((phone, device)) = sender(conn) else {
        return;
    };
    let ids: Vec<String> = std::iter::once(attr(node, "id").unwrap_or_default().into_owned())
        .chain(
            child(node, "list")
                .map(children)
                .unwrap_or_default()
                .iter()
                .filter_map(|item| attr(item, "id").map(|i| i.into_owned())),
        )
        .filter(|id| !id.is_empty())
        .collect();
    let mut state = net.state();
    if let Some(own) = state.accounts.get_mut(&phone).and_then(|a| a.devices.get_mut(&device)) {
        own.inbox.retain(|p| !(p.class == "message" && ids.contains(&p.id)));
    }
    let kind = attr(node, "type").map(|t| t.into_owned());
    let to = attr(node, "to").unwrap_or_default().into_owned();
    let (_, server) = split_jid(&to);
    let participant = attr(node, "participant").map(|p| p.into_owned());
    // Receipts about one's own messages on another device stay with the account.
    if matches!(kind.as_deref(), Some("sender" | "peer_msg")) {
        return;
    }
    let Some(reader) = state.accounts.get(&phone) else {
        return;
    };
    let (writer_jid, group) = match (server.as_str(), &participant) {
        ("g.us" | "broadcast", Some(participant)) => (participant.clone(), Some(to.clone())),
        _ => (to.clone(), None),
    };
    let (_, writer_server) = split_jid(&writer_jid);
    let reader_jid = reader.device_on(&writer_server, device);
    let Some(writer) = state.account_of(&writer_jid).map(|a| a.phone.clone()) else {
        return;
    };
    let mut receipt = NodeBuilder::new("receipt")
        .attr("id", ids.first().cloned().unwrap_or_default())
        .attr("t", now_secs().to_string());
    receipt = match &group {
        Some(group) => receipt.attr("from", group.clone()).attr("participant", reader_jid),
        None => receipt.attr("from", reader_jid),
    };
    match kind.as_deref() {
        // A device that is not "available" says `inactive`: it was delivered all the same.
        None | Some("inactive" | "delivery") => {}
        Some(other) => receipt = receipt.attr("type", other.to_owned()),
    }
    let mut content: Vec<Node> = children(node).to_vec();
    content.retain(|c| c.tag != "list");
    if ids.len() > 1 {
        content.push(
            NodeBuilder::new("list")
                .children(
                    ids[1..]
                        .iter()
                        .map(|id| NodeBuilder::new("item").attr("id", id.clone()).build()),
                )
                .build(),
        );
    }
    let receipt = receipt.children(content).build();
    let targets: Vec<u16> = if kind.as_deref() == Some("retry") {
        vec![device_of(&writer_jid)]
    } else {
        state
            .accounts
            .get(&writer)
            .map(|a| a.devices.keys().copied().collect())
            .unwrap_or_default()
    };
    for target in targets {
        deliver(&mut state, &writer, target, "receipt", receipt.clone());
    }
}

/// An `<ack>` a device sends: that stanza leaves its inbox.
pub fn on_ack(net: &Network, conn: &Conn, node: &Node) {
    let Some((phone, device)) = sender(conn) else {
        return;
    };
    let (Some(class), Some(id)) = (attr(node, "class"), attr(node, "id")) else {
        return;
    };
    if let Some(own) = net
        .state()
        .accounts
        .get_mut(&phone)
        .and_then(|a| a.devices.get_mut(&device))
    {
        own.inbox.retain(|p| !(p.class == class && p.id == id));
    }
}
