//! Signal prekeys as WhatsApp's key server keeps them: each device uploads its identity,
//! signed prekey and one-time prekeys (`<iq xmlns="encrypt" type="set">`); whoever writes
//! to it first fetches a bundle (`type="get"`), which spends one one-time prekey. Every key
//! is relayed byte for byte: the fetching client checks the signature itself.

use std::collections::VecDeque;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;

use crate::network::State;
use crate::wire::{child, child_bytes, children, iq_error, iq_result};

/// The keys a device uploaded.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// Its registration id, 4 bytes big-endian as uploaded.
    pub registration: Vec<u8>,
    /// Its identity key, 32 bytes.
    pub identity: Vec<u8>,
    pub signed: SignedPreKey,
    /// One-time prekeys not handed out yet: (3-byte id, 32-byte key).
    pub one_time: VecDeque<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, Default)]
pub struct SignedPreKey {
    pub id: Vec<u8>,
    pub value: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SignedPreKey {
    fn from_node(skey: &Node) -> Option<Self> {
        Some(Self {
            id: child_bytes(skey, "id")?,
            value: child_bytes(skey, "value")?,
            signature: child_bytes(skey, "signature")?,
        })
    }

    fn node(&self) -> Node {
        NodeBuilder::new("skey")
            .children([
                NodeBuilder::new("id").bytes(self.id.clone()).build(),
                NodeBuilder::new("value").bytes(self.value.clone()).build(),
                NodeBuilder::new("signature").bytes(self.signature.clone()).build(),
            ])
            .build()
    }
}

impl Bundle {
    /// The bundle for one fetch, spending a one-time prekey if any is left.
    fn take(&mut self, jid: &str) -> Node {
        let mut content = vec![
            NodeBuilder::new("registration")
                .bytes(self.registration.clone())
                .build(),
            NodeBuilder::new("type").bytes(vec![5u8]).build(),
            NodeBuilder::new("identity").bytes(self.identity.clone()).build(),
            self.signed.node(),
        ];
        if let Some((id, value)) = self.one_time.pop_front() {
            content.push(
                NodeBuilder::new("key")
                    .children([
                        NodeBuilder::new("id").bytes(id).build(),
                        NodeBuilder::new("value").bytes(value).build(),
                    ])
                    .build(),
            );
        }
        NodeBuilder::new("user")
            .attr("jid", jid.to_owned())
            .children(content)
            .build()
    }
}

fn one_time_keys(list: &Node) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    children(list)
        .iter()
        .filter(|k| k.tag == "key")
        .filter_map(|k| Some((child_bytes(k, "id")?, child_bytes(k, "value")?)))
}

/// A device's `encrypt` request: upload, rotation, count, digest or a bundle fetch.
pub fn answer(state: &mut State, phone: &str, device: u16, iq: &Node, is_set: bool) -> Node {
    if !is_set && let Some(key) = child(iq, "key") {
        return fetch(state, iq, key);
    }
    let Some(device) = state.accounts.get_mut(phone).and_then(|a| a.devices.get_mut(&device)) else {
        return iq_error(iq, 404, "item-not-found");
    };
    if is_set {
        if let Some(rotate) = child(iq, "rotate") {
            let (Some(keys), Some(signed)) = (
                device.keys.as_mut(),
                child(rotate, "skey").and_then(SignedPreKey::from_node),
            ) else {
                return iq_error(iq, 400, "bad-request");
            };
            keys.signed = signed;
            return iq_result(iq, Vec::new());
        }
        let uploaded = child(iq, "skey").and_then(SignedPreKey::from_node);
        let keys = device.keys.get_or_insert_with(Bundle::default);
        if let Some(registration) = child_bytes(iq, "registration") {
            keys.registration = registration;
        }
        if let Some(identity) = child_bytes(iq, "identity") {
            keys.identity = identity;
        }
        if let Some(signed) = uploaded {
            keys.signed = signed;
        }
        if let Some(list) = child(iq, "list") {
            keys.one_time.extend(one_time_keys(list));
        }
        return iq_result(iq, Vec::new());
    }
    if child(iq, "count").is_some() {
        let count = device.keys.as_ref().map_or(0, |k| k.one_time.len());
        return iq_result(
            iq,
            vec![NodeBuilder::new("count").attr("value", count.to_string()).build()],
        );
    }
    // A digest is answered without one: the client then skips its check (a 404 would
    // make it upload again for ever).
    iq_result(iq, Vec::new())
}

/// Bundles for the devices asked about, each under the JID it was asked by (PN or LID);
/// a device without keys gets a per-user error, as WhatsApp answers.
fn fetch(state: &mut State, iq: &Node, key: &Node) -> Node {
    let users: Vec<Node> = children(key)
        .iter()
        .filter(|u| u.tag == "user")
        .filter_map(|u| crate::wire::attr(u, "jid").map(|j| j.into_owned()))
        .map(|jid| {
            let device = crate::network::device_of(&jid);
            let bundle = state
                .account_of_mut(&jid)
                .and_then(|a| a.devices.get_mut(&device))
                .and_then(|d| d.keys.as_mut())
                .map(|keys| keys.take(&jid));
            bundle.unwrap_or_else(|| {
                NodeBuilder::new("user")
                    .attr("jid", jid)
                    .children([NodeBuilder::new("error")
                        .attr("code", "404")
                        .attr("text", "item-not-found")
                        .build()])
                    .build()
            })
        })
        .collect();
    iq_result(iq, vec![NodeBuilder::new("list").children(users).build()])
}
