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
        "usync" => vec![usync(net, iq)],
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

/// User sync. A contact query ("is this number on WhatsApp?") is answered as WhatsApp
/// does: each number under the account's canonical number (Brazil's ninth digit,
/// Mexico's `521` → `52`), `in` or `out`, the query echoed as the contact's text, and the
/// account's LID. Other queries (device lists) get an empty list for now.
fn usync(net: &Network, iq: &Node) -> Node {
    let asks_contact = child(iq, "usync")
        .and_then(|u| child(u, "query"))
        .is_some_and(|q| child(q, "contact").is_some());
    let mut users = Vec::new();
    if asks_contact {
        let queried = child(iq, "usync")
            .and_then(|u| child(u, "list"))
            .map(children)
            .unwrap_or_default();
        let state = net.state();
        for user in queried.iter().filter(|u| u.tag == "user") {
            let Some(query) = child_text(user, "contact") else {
                continue;
            };
            let number = digits(&query);
            let found = canonical_forms(&number)
                .into_iter()
                .find_map(|form| state.accounts.get(&form));
            let mut answer = vec![
                NodeBuilder::new("contact")
                    .attr("type", if found.is_some() { "in" } else { "out" })
                    .string_content(query.clone())
                    .build(),
            ];
            if let Some(account) = found {
                answer.push(
                    NodeBuilder::new("lid")
                        .attr("val", format!("{}@lid", account.lid))
                        .build(),
                );
            }
            let jid = found.map_or_else(|| format!("{number}@s.whatsapp.net"), |a| a.jid());
            users.push(NodeBuilder::new("user").attr("jid", jid).children(answer).build());
        }
    }
    iq_result(
        iq,
        vec![
            NodeBuilder::new("usync")
                .children([NodeBuilder::new("list").children(users).build()])
                .build(),
        ],
    )
}

/// The numbers WhatsApp treats as the same account as `number` (digits), itself first:
/// Brazilian mobiles with and without the ninth digit, Mexican mobiles with and without
/// the `1` after the country code.
pub fn canonical_forms(number: &str) -> Vec<String> {
    let mut forms = vec![number.to_owned()];
    if let Some(rest) = number.strip_prefix("55") {
        let (area, local) = rest.split_at(rest.len().min(2));
        match local.len() {
            8 => forms.push(format!("55{area}9{local}")),
            9 if local.starts_with('9') => forms.push(format!("55{area}{}", &local[1..])),
            _ => {}
        }
    } else if let Some(rest) = number.strip_prefix("521") {
        forms.push(format!("52{rest}"));
    } else if let Some(rest) = number.strip_prefix("52") {
        forms.push(format!("521{rest}"));
    }
    forms
}

/// A child's text content.
fn child_text(node: &Node, tag: &str) -> Option<String> {
    crate::wire::child_bytes(node, tag).and_then(|b| String::from_utf8(b).ok())
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

#[cfg(test)]
mod tests {
    use super::canonical_forms;

    #[test]
    fn brazilian_and_mexican_numbers_have_their_other_form() {
        assert_eq!(canonical_forms("551187654321"), ["551187654321", "5511987654321"]);
        assert_eq!(canonical_forms("5511987654321"), ["5511987654321", "551187654321"]);
        assert_eq!(canonical_forms("5215512345678"), ["5215512345678", "525512345678"]);
        assert_eq!(canonical_forms("15551234567"), ["15551234567"]);
    }
}
