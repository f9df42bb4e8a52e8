//! WhatsApp addresses (JIDs): `user@server`, e.g. `12015550123@s.whatsapp.net` for a
//! person, `120363…@g.us` for a group, `…@lid` for a hidden-number identity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const USER_SERVER: &str = "s.whatsapp.net";
pub const GROUP_SERVER: &str = "g.us";
pub const LID_SERVER: &str = "lid";
/// Besides people, groups and LIDs: status and lists, newsletters, Meta AI and other bots,
/// hosted (business API) accounts and interop users.
const KNOWN_SERVERS: &[&str] = &[
    USER_SERVER,
    GROUP_SERVER,
    LID_SERVER,
    "broadcast",
    "newsletter",
    "bot",
    "hosted",
    "hosted.lid",
    "interop",
    "msgr",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jid {
    user: String,
    server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a WhatsApp JID; expected user@server, e.g. 12015550123@s.whatsapp.net or 1203630…@g.us")]
pub struct JidError(pub String);

impl Jid {
    /// The JID of a LID (`…@lid`).
    pub fn lid(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            server: LID_SERVER.to_owned(),
        }
    }

    /// A person's JID from the digits of their number.
    pub fn user(digits: &str) -> Self {
        Self {
            user: digits.to_owned(),
            server: USER_SERVER.to_owned(),
        }
    }

    pub fn new(user: &str, server: &str) -> Self {
        Self {
            user: user.to_owned(),
            server: server.to_owned(),
        }
    }

    pub fn user_part(&self) -> &str {
        &self.user
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn is_group(&self) -> bool {
        self.server == GROUP_SERVER
    }

    /// The phone number's digits of a person's JID (`s.whatsapp.net`), without device suffix.
    pub fn phone_digits(&self) -> Option<&str> {
        (self.server == USER_SERVER).then(|| self.user.split(':').next().unwrap_or(&self.user))
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || JidError(s.to_owned());
        let (user, server) = s.trim().split_once('@').ok_or_else(err)?;
        // `c.us` is the old name of the user server, still used by some clients.
        let server = if server == "c.us" { USER_SERVER } else { server };
        if user.is_empty() || user.len() > 64 || !KNOWN_SERVERS.contains(&server) {
            return Err(err());
        }
        let allowed = |c: char| {
            c.is_ascii_digit()
                || (server != USER_SERVER && (c == '-' || c.is_ascii_alphanumeric()))
                || c == ':'
                || c == '.'
        };
        if !user.chars().all(allowed) {
            return Err(err());
        }
        Ok(Self::new(user, server))
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.server)
    }
}

impl TryFrom<String> for Jid {
    type Error = JidError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Jid> for String {
    fn from(value: Jid) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_people_groups_and_lids() {
        let person: Jid = "12015550123@s.whatsapp.net".parse().unwrap();
        assert_eq!(person.phone_digits(), Some("12015550123"));
        assert_eq!("12015550123@c.us".parse::<Jid>().unwrap(), person);
        let group: Jid = "120363025246125486@g.us".parse().unwrap();
        assert!(group.is_group());
        assert!("1234-5678@g.us".parse::<Jid>().is_ok());
        assert!("98765@lid".parse::<Jid>().is_ok());
    }

    #[test]
    fn refuses_malformed_jids() {
        for bad in [
            "",
            "@s.whatsapp.net",
            "123@",
            "123@example.com",
            "12ab@s.whatsapp.net",
            "a b@g.us",
        ] {
            assert!(bad.parse::<Jid>().is_err(), "{bad}");
        }
    }
}
