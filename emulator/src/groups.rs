//! Groups as WhatsApp's servers keep them: created by an account (`<iq xmlns="w:g2">
//! <create>`), listed and described to members, and fanned out: a member's message
//! reaches every device of every other member. A group is addressed by phone numbers
//! (`pn`) or, as new groups are, by LIDs (`lid`), with the phone number beside each LID.

use chrono::{DateTime, Utc};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;

use crate::network::{Account, Addressing, State, split_jid};
use crate::wire::{attr, child, children, iq_error, iq_result, now_secs};

#[derive(Debug, Clone)]
pub struct Group {
    /// The user part of its JID, `120363…`.
    pub id: String,
    pub subject: String,
    /// The creator's phone number (digits).
    pub creator: String,
    pub created_at: DateTime<Utc>,
    /// Members by phone number (digits), with their role.
    pub members: Vec<Member>,
    pub addressing: Addressing,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub phone: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
    SuperAdmin,
}

impl Group {
    pub fn jid(&self) -> String {
        format!("{}@g.us", self.id)
    }

    fn server(&self) -> &'static str {
        match self.addressing {
            Addressing::Lid => "lid",
            Addressing::Pn => "s.whatsapp.net",
        }
    }

    pub fn has(&self, phone: &str) -> bool {
        self.members.iter().any(|m| m.phone == phone)
    }

    /// The group as `<group>` describes it, members in the group's addressing.
    pub fn node(&self, state: &State) -> Node {
        let server = self.server();
        let jid_of = |phone: &str| {
            state
                .accounts
                .get(phone)
                .map_or_else(|| format!("{phone}@s.whatsapp.net"), |a| a.user_on(server))
        };
        let participants = self.members.iter().map(|m| {
            let mut p = NodeBuilder::new("participant").attr("jid", jid_of(&m.phone));
            if let Some(account) = state.accounts.get(&m.phone) {
                p = match self.addressing {
                    Addressing::Lid => p.attr("phone_number", account.jid()),
                    Addressing::Pn => p.attr("lid", account.lid_jid()),
                };
            }
            match m.role {
                Role::Member => p.build(),
                Role::Admin => p.attr("type", "admin").build(),
                Role::SuperAdmin => p.attr("type", "superadmin").build(),
            }
        });
        let creation = self.created_at.timestamp().to_string();
        let mut group = NodeBuilder::new("group")
            .attr("id", self.id.clone())
            .attr("subject", self.subject.clone())
            .attr("s_t", creation.clone())
            .attr("s_o", jid_of(&self.creator))
            .attr("creator", jid_of(&self.creator))
            .attr("creation", creation)
            .attr("size", self.members.len().to_string())
            .attr(
                "addressing_mode",
                match self.addressing {
                    Addressing::Lid => "lid",
                    Addressing::Pn => "pn",
                },
            );
        if self.addressing == Addressing::Lid
            && let Some(creator) = state.accounts.get(&self.creator)
        {
            group = group.attr("creator_pn", creator.jid());
        }
        group.children(participants).build()
    }
}

/// A new group id, in the shape WhatsApp gives them.
fn new_id() -> String {
    use rand::Rng;
    format!("120363{:012}", rand::rng().random_range(0..1_000_000_000_000u64))
}

/// Creates a group owned by `creator` with `members` (phone numbers, LIDs or JIDs).
pub fn create(
    state: &mut State,
    creator: &str,
    subject: &str,
    members: &[String],
    addressing: Addressing,
) -> Result<Group, String> {
    let mut group = Group {
        id: new_id(),
        subject: subject.to_owned(),
        creator: creator.to_owned(),
        created_at: Utc::now(),
        members: vec![Member {
            phone: creator.to_owned(),
            role: Role::SuperAdmin,
        }],
        addressing,
    };
    for member in members {
        let jid = if member.contains('@') {
            member.clone()
        } else {
            format!("{}@s.whatsapp.net", crate::network::digits(member))
        };
        let phone = state
            .account_of(&jid)
            .map(|a| a.phone.clone())
            .ok_or_else(|| format!("{member} has no account"))?;
        if !group.has(&phone) {
            group.members.push(Member {
                phone,
                role: Role::Member,
            });
        }
    }
    state.groups.insert(group.id.clone(), group.clone());
    announce(state, &group);
    Ok(group)
}

/// Tells the members' devices they were added (`w:gp2` `<add>`), as WhatsApp does.
fn announce(state: &mut State, group: &Group) {
    let server = group.server();
    let (t, creator) = (
        now_secs().to_string(),
        state
            .accounts
            .get(&group.creator)
            .map(|a| a.user_on(server))
            .unwrap_or_default(),
    );
    let added: Vec<Node> = group
        .members
        .iter()
        .filter_map(|m| state.accounts.get(&m.phone))
        .map(|a| NodeBuilder::new("participant").attr("jid", a.user_on(server)).build())
        .collect();
    for member in group.members.iter().filter(|m| m.phone != group.creator) {
        let devices: Vec<u16> = state
            .accounts
            .get(&member.phone)
            .map(|a| a.devices.keys().copied().collect())
            .unwrap_or_default();
        for device in devices {
            let id = format!("{}.{}.{device}", group.id, member.phone);
            let node = NodeBuilder::new("notification")
                .attr("from", group.jid())
                .attr("type", "w:gp2")
                .attr("id", id)
                .attr("t", t.clone())
                .attr("participant", creator.clone())
                .children([NodeBuilder::new("add").children(added.clone()).build()])
                .build();
            crate::routing::deliver(state, &member.phone, device, "notification", node);
        }
    }
}

/// A device's `w:g2` request: create, list the groups it is in, or describe one.
pub fn answer(state: &mut State, phone: &str, iq: &Node) -> Node {
    let to = attr(iq, "to").unwrap_or_default().into_owned();
    if let Some(create_node) = child(iq, "create") {
        let subject = attr(create_node, "subject").unwrap_or_default().into_owned();
        let members: Vec<String> = children(create_node)
            .iter()
            .filter(|c| c.tag == "participant")
            .filter_map(|c| attr(c, "jid").map(|j| j.into_owned()))
            .collect();
        let addressing = state.accounts.get(phone).map(|a| a.addressing).unwrap_or_default();
        return match create(state, phone, &subject, &members, addressing) {
            Ok(group) => iq_result(iq, vec![group.node(state)]),
            Err(_) => iq_error(iq, 406, "not-acceptable"),
        };
    }
    if child(iq, "participating").is_some() {
        let groups: Vec<Node> = state
            .groups
            .values()
            .filter(|g| g.has(phone))
            .map(|g| g.node(state))
            .collect();
        return iq_result(iq, vec![NodeBuilder::new("groups").children(groups).build()]);
    }
    if child(iq, "query").is_some() {
        let (id, _) = split_jid(&to);
        return match state.groups.get(&id) {
            Some(group) if group.has(phone) => iq_result(iq, vec![group.node(state)]),
            Some(_) => iq_error(iq, 403, "forbidden"),
            None => iq_error(iq, 404, "item-not-found"),
        };
    }
    iq_error(iq, 501, "feature-not-implemented")
}

/// A member's message to the group: every other member's devices get it, from the group
/// with the sender as participant. A non-member is refused (403), an unknown group 404.
pub fn on_message(state: &mut State, phone: &str, device: u16, to: &str, node: &Node) -> Option<u16> {
    let (id, _) = split_jid(to);
    let Some(group) = state.groups.get(&id).cloned() else {
        return Some(404);
    };
    if !group.has(phone) {
        return Some(403);
    }
    let account: &Account = state.accounts.get(phone)?;
    let server = group.server();
    let participant = account.device_on(server, device);
    let alt = match group.addressing {
        Addressing::Lid => ("participant_pn", account.jid()),
        Addressing::Pn => ("participant_lid", account.lid_jid()),
    };
    let name = account.name.clone();
    let recipients: Vec<String> = group.members.iter().map(|m| m.phone.clone()).collect();
    let (msg_id, t) = (
        attr(node, "id").unwrap_or_default().into_owned(),
        now_secs().to_string(),
    );
    let mode = if group.addressing == Addressing::Lid {
        "lid"
    } else {
        "pn"
    };
    let header = move |copy: NodeBuilder| {
        copy.attr("from", group.jid())
            .attr("participant", participant.clone())
            .attr(alt.0, alt.1.clone())
            .attr("addressing_mode", mode)
            .attr("id", msg_id.clone())
            .attr("t", t.clone())
            .attr("notify", name.clone())
    };
    crate::routing::fan_out(state, (phone, device), &recipients, node, &header);
    None
}
