//! Answers to the requests (`<iq>`) a client sends. Every request gets an answer, an
//! error at least: a client whose request goes unanswered stops pinging and soon
//! reconnects. Linked devices get what logging in and staying online needs (keepalive,
//! the active/passive switch with the end of the offline queue, prekeys, props, privacy,
//! blocklist, device lists, app-state collections, unlinking themselves); devices that
//! are pairing get the pair-code steps.

use std::sync::Arc;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;

use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

use crate::network::{Account, Conn, Network, Role, device_of, digits, split_jid};
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
        // The device goes active: answer, then hand it what waited for it and say the
        // offline queue is done.
        "passive" => {
            let mut out = vec![iq_result(iq, Vec::new())];
            out.extend(crate::routing::offline_queue(net, phone, id));
            out
        }
        "encrypt" => vec![crate::prekeys::answer(&mut net.state(), &digits(phone), id, iq, is_set)],
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
        "privacy" if is_set => vec![iq_result(iq, Vec::new())],
        "privacy" => vec![iq_result(iq, vec![NodeBuilder::new("privacy").build()])],
        "usync" => vec![usync(net, phone, id, iq)],
        "w:m" if child(iq, "media_conn").is_some() => vec![crate::media::media_conn(net, iq)],
        "w:g2" => vec![crate::groups::answer(&mut net.state(), &digits(phone), iq)],
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

/// User sync: for each user asked about (by phone number, LID, or a contact's number as
/// typed), the protocols the query names. A contact query ("is this number on
/// WhatsApp?") is answered as WhatsApp does: under the account's canonical number
/// (Brazil's ninth digit, Mexico's `521` → `52`), `in` or `out`, the query echoed as the
/// contact's text. `lid` gives the account's LID; `devices` its primary and linked
/// devices with the key-index list the account signed.
fn usync(net: &Network, phone: &str, asker: u16, iq: &Node) -> Node {
    let Some(sync) = child(iq, "usync") else {
        return iq_error(iq, 400, "bad-request");
    };
    let asked: Vec<String> = child(sync, "query")
        .map(children)
        .unwrap_or_default()
        .iter()
        .map(|p| p.tag.to_string())
        .collect();
    let asks = |protocol: &str| asked.iter().any(|p| p == protocol);
    let queried = child(sync, "list").map(children).unwrap_or_default();
    let mut state = net.state();
    let own = digits(phone);
    if asks("devices")
        && queried
            .iter()
            .filter_map(|u| attr(u, "jid"))
            .any(|jid| state.account_of(&jid).is_some_and(|a| a.phone == own))
        && let Some(device) = state.accounts.get_mut(&own).and_then(|a| a.devices.get_mut(&asker))
    {
        device.knows_own_devices = true;
    }
    let mut users = Vec::new();
    for user in queried.iter().filter(|u| u.tag == "user") {
        let mut answer = Vec::new();
        let (jid, found) = match child_text(user, "contact") {
            Some(query) => {
                let number = digits(&query);
                let found = canonical_forms(&number)
                    .into_iter()
                    .find_map(|form| state.accounts.get(&form));
                if asks("contact") {
                    answer.push(
                        NodeBuilder::new("contact")
                            .attr("type", if found.is_some() { "in" } else { "out" })
                            .string_content(query.clone())
                            .build(),
                    );
                }
                let jid = found.map_or_else(|| format!("{number}@s.whatsapp.net"), Account::jid);
                (jid, found)
            }
            None => {
                let Some(jid) = attr(user, "jid") else {
                    continue;
                };
                let (user, server) = split_jid(&jid);
                (format!("{user}@{server}"), state.account_of(&jid))
            }
        };
        let mut node = NodeBuilder::new("user").attr("jid", jid.clone());
        if let Some(account) = found {
            if jid.ends_with("@lid") {
                node = node.attr("pn_jid", account.jid());
            }
            if asks("lid") {
                answer.push(NodeBuilder::new("lid").attr("val", account.lid_jid()).build());
            }
        }
        if asks("devices") {
            answer.push(match found {
                Some(account) => device_list(account),
                None => NodeBuilder::new("devices")
                    .children([NodeBuilder::new("device-list").build()])
                    .build(),
            });
        }
        users.push(node.children(answer).build());
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

/// An account's devices as usync lists them: the primary (when it runs) and each linked
/// device with its key index, and the key-index list signed by the account.
fn device_list(account: &Account) -> Node {
    let devices: Vec<Node> = account
        .devices
        .values()
        .map(|d| {
            let node = NodeBuilder::new("device").attr("id", d.id.to_string());
            if d.id == 0 {
                node.build()
            } else {
                node.attr("key-index", d.key_index.to_string()).build()
            }
        })
        .collect();
    let now = u64::try_from(now_secs()).unwrap_or_default();
    let valid: Vec<u32> = account
        .devices
        .values()
        .filter(|d| d.id != 0)
        .map(|d| d.key_index)
        .collect();
    let details = wa::ADVKeyIndexList {
        raw_id: Some(account.raw_id),
        timestamp: Some(now),
        current_index: Some(valid.iter().copied().max().unwrap_or(0)),
        valid_indexes: valid,
        ..Default::default()
    }
    .encode_to_vec();
    let signature =
        wacore::crypto::calculate_curve_signature(&account.identity.private_key, &[&[6u8, 2][..], &details].concat())
            .map(|s| s.to_vec())
            .unwrap_or_else(|_| vec![0; 64]);
    let signed = wa::ADVSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(signature),
        ..Default::default()
    }
    .encode_to_vec();
    NodeBuilder::new("devices")
        .children([
            NodeBuilder::new("device-list").children(devices).build(),
            NodeBuilder::new("key-index-list")
                .attr("ts", now.to_string())
                .bytes(signed)
                .build(),
        ])
        .build()
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
