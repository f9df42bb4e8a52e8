//! What a token may do. A permanent token may be limited to some scopes and some phones;
//! session tokens, and tokens minted before scopes existed, may do everything.
//! - `read`: every GET operation (except the token list);
//! - `send`: send messages, show typing, check numbers;
//! - `manage`: phones (add, connect, disconnect, log out, delete), webhooks, the sandbox;
//! - `admin`: the permanent tokens, and everything else.
//!
//! A token limited to phones reaches only operations about one of its phones (a phone it
//! does not list is reported missing, so it cannot probe which numbers exist), the phone
//! list and the event stream (both show only its phones), and the quota and health.

use std::collections::BTreeSet;

use poem::http::Method;

/// What a token may do: `read`, `send`, `manage` or `admin` (everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Send,
    Manage,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Send, Scope::Manage, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Manage => "manage",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The scope an operation needs.
pub fn required(operation_id: &str, method: &Method) -> Scope {
    match operation_id {
        "listTokens" | "revokeToken" => Scope::Admin,
        "sendMessage" | "sendTyping" | "hasWhatsapp" | "reactToMessage" | "markMessageRead" | "markChatRead" => {
            Scope::Send
        }
        "addPhone"
        | "deletePhone"
        | "connectPhone"
        | "disconnectPhone"
        | "logoutPhone"
        | "createWebhook"
        | "updateWebhook"
        | "deleteWebhook"
        | "rotateWebhookSecret"
        | "redeliverWebhookDelivery"
        | "redeliverWebhookDeliveries"
        | "testWebhook"
        | "sandboxCreateAccount"
        | "sandboxScan"
        | "sandboxInbound"
        | "sandboxFault"
        | "sandboxCreateGroup" => Scope::Manage,
        _ if *method == Method::GET => Scope::Read,
        // An operation nobody classified: only a token that may do everything.
        _ => Scope::Admin,
    }
}

/// Operations without a phone in their path that a phone-limited token may still call:
/// they answer only about its phones, or about no phone at all.
pub fn open_to_phone_limited(operation_id: &str) -> bool {
    matches!(
        operation_id,
        "listPhones" | "addPhone" | "streamEvents" | "getQuota" | "healthResources"
    )
}

/// What one token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    scopes: BTreeSet<Scope>,
    /// E.164 numbers; `None`: every phone.
    phones: Option<BTreeSet<String>>,
}

impl Grant {
    /// Everything, on every phone.
    pub fn full() -> Self {
        Self {
            scopes: BTreeSet::from([Scope::Admin]),
            phones: None,
        }
    }

    pub fn new(scopes: impl IntoIterator<Item = Scope>, phones: Option<impl IntoIterator<Item = String>>) -> Self {
        Self {
            scopes: scopes.into_iter().collect(),
            phones: phones.map(|p| p.into_iter().collect()),
        }
    }

    /// As stored: comma-separated scopes and phones; `None` (a token from before scopes)
    /// means everything. Unknown scope names grant nothing.
    pub fn from_stored(scopes: Option<&str>, phones: Option<&str>) -> Self {
        let Some(scopes) = scopes else {
            return Self::full();
        };
        let list = |text: &str| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        Self {
            scopes: list(scopes).iter().filter_map(|s| Scope::parse(s)).collect(),
            phones: phones.map(|p| list(p).into_iter().collect()),
        }
    }

    pub fn stored_scopes(&self) -> String {
        self.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn stored_phones(&self) -> Option<String> {
        self.phones
            .as_ref()
            .map(|p| p.iter().cloned().collect::<Vec<_>>().join(","))
    }

    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&needed)
    }

    /// Whether the token may act on this phone (E.164).
    pub fn allows_phone(&self, phone: &str) -> bool {
        self.phones.as_ref().is_none_or(|p| p.contains(phone))
    }

    pub fn all_phones(&self) -> bool {
        self.phones.is_none()
    }

    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().copied()
    }

    pub fn phones(&self) -> Option<impl Iterator<Item = &str> + '_> {
        self.phones.as_ref().map(|p| p.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_covers_everything_and_others_only_themselves() {
        let admin = Grant::full();
        let reader = Grant::new([Scope::Read], None::<Vec<String>>);
        for scope in Scope::ALL {
            assert!(admin.allows(scope));
            assert_eq!(reader.allows(scope), scope == Scope::Read);
        }
        assert_eq!(required("sendMessage", &Method::POST), Scope::Send);
        assert_eq!(required("listTokens", &Method::GET), Scope::Admin);
        assert_eq!(required("listPhones", &Method::GET), Scope::Read);
        assert_eq!(required("somethingNew", &Method::POST), Scope::Admin);
    }

    #[test]
    fn stored_grants_round_trip_and_old_tokens_keep_full_access() {
        let grant = Grant::new([Scope::Send, Scope::Read], Some(vec!["+12015550101".to_owned()]));
        let back = Grant::from_stored(Some(&grant.stored_scopes()), grant.stored_phones().as_deref());
        assert_eq!(back, grant);
        assert!(back.allows_phone("+12015550101") && !back.allows_phone("+12015550102"));
        assert_eq!(Grant::from_stored(None, None), Grant::full());
        assert!(!Grant::from_stored(Some("bogus"), None).allows(Scope::Read));
    }
}
