//! Answers to the requests (`<iq>`) a client sends. Every request gets an answer, an
//! error at least: a client whose request goes unanswered stops pinging and soon
//! reconnects. Linked devices get what logging in and staying online needs (keepalive,
//! the active/passive switch with the end of the offline queue, prekeys, props, privacy,
//! blocklist, device lists, app-state collections, unlinking themselves); devices that
//! are pairing get the pair-code steps.

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;

use crate::network::{Conn, Network, Role, digits};
use crate::pairing;
use crate::wire::{attr, attr_is, child, children, iq_error, iq_result, now_secs};

pub fn answer(net: &Arc<Network>, conn: &Arc<Conn>, iq: &Node) -> Vec<Node> {
    let xmlns = attr(iq, "xmlns").unwrap_or_default().into_owned();
    match (conn.role(), xmlns.as_str()) {
        (_, "w:p") => vec![pong(iq)],
        (Role::Registering(_), "md") if child(iq, "link_code_companion_reg").is_some() => {
            vec![pairing::on_companion_reg(net, conn, iq)]
        }
        (Role::Device { phone, id }, namespace) => device_request(net, &phone, id, namespace, iq),
        _ => vec![iq_error(iq, 501, "feature-not-implemented")],
    }
}

fn pong(iq: &Node) -> Node {
    let mut pong = iq_result(iq, Vec::new());
    pong.attrs.insert("t", now_secs().to_string());
    pong
}

fn device_request(net: &Network, phone: &str, id: u16, namespace: &str, iq: &Node) -> Vec<Node> {
    let is_set = attr_is(iq, "type", "set");
    match namespace {
        // The device goes active: answer, then say its offline queue is empty.
        "passive" => vec![
            iq_result(iq, Vec::new()),
            NodeBuilder::new("ib")
                .children([NodeBuilder::new("offline").attr("count", "0").build()])
                .build(),
        ],
        "encrypt" => vec![prekeys(net, phone, id, iq, is_set)],
        "abt" => vec![iq_result(
            iq,
            vec![
                NodeBuilder::new("props")
                    .attr("protocol", "1")
                    .attr("hash", "emulator")
                    .build(),
            ],
        )],
        "blocklist" => vec![iq_result(iq, vec![NodeBuilder::new("list").build()])],
        "privacy" => vec![iq_result(iq, vec![NodeBuilder::new("privacy").build()])],
        "usync" => vec![iq_result(
            iq,
            vec![
                NodeBuilder::new("usync")
                    .children([NodeBuilder::new("list").build()])
                    .build(),
            ],
        )],
        "w:sync:app:state" => vec![app_state(iq)],
        "md" if child(iq, "remove-companion-device").is_some() => {
            let removed = child(iq, "remove-companion-device")
                .and_then(|r| attr(r, "jid"))
                .map(|jid| device_of(&jid))
                .unwrap_or(id);
            if let Some(account) = net.state().accounts.get_mut(&digits(phone)) {
                account.devices.remove(&removed);
                tracing::info!(%phone, device = removed, "a linked device logged itself out");
            }
            vec![iq_result(iq, Vec::new())]
        }
        _ => vec![iq_error(iq, 501, "feature-not-implemented")],
    }
}

/// The device number in `15551234567:3@s.whatsapp.net`.
fn device_of(jid: &str) -> u16 {
    jid.split('@')
        .next()
        .and_then(|user| user.split(':').nth(1))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Prekey upload, count and digest. The digest is answered without a bundle (the client
/// then skips its check); a 404 would make it upload again forever.
fn prekeys(net: &Network, phone: &str, id: u16, iq: &Node, is_set: bool) -> Node {
    let mut state = net.state();
    let device = state
        .accounts
        .get_mut(&digits(phone))
        .and_then(|a| a.devices.get_mut(&id));
    let Some(device) = device else {
        return iq_error(iq, 404, "item-not-found");
    };
    if is_set {
        if let Some(list) = child(iq, "list") {
            device.prekeys += children(list).iter().filter(|k| k.tag == "key").count();
        }
        return iq_result(iq, Vec::new());
    }
    if child(iq, "count").is_some() {
        return iq_result(
            iq,
            vec![
                NodeBuilder::new("count")
                    .attr("value", device.prekeys.to_string())
                    .build(),
            ],
        );
    }
    iq_result(iq, Vec::new())
}

/// App-state collections: every one asked for is empty (nothing to sync), which is all a
/// freshly linked device needs before it calls itself connected.
fn app_state(iq: &Node) -> Node {
    let names: Vec<Node> = child(iq, "sync")
        .map(children)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.tag == "collection")
        .filter_map(|c| attr(c, "name"))
        .map(|name| NodeBuilder::new("collection").attr("name", name.into_owned()).build())
        .collect();
    iq_result(iq, vec![NodeBuilder::new("sync").children(names).build()])
}
