//! The states a phone can be in, as the API reports them.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhoneStatus {
    /// Not connected; the link (if any) is kept, so connecting needs no QR.
    Disconnected,
    /// Logging in with the stored link.
    Connecting,
    /// Waiting for the QR code to be scanned or the pairing code to be entered.
    Pairing,
    /// Online.
    Connected,
    /// The connection dropped; the session is reconnecting by itself.
    Reconnecting,
    /// The device was unlinked: connecting needs a new pairing.
    LoggedOut,
    /// The session kept crashing and was stopped; connect to try again.
    Failed,
}

impl PhoneStatus {
    pub const ALL: [PhoneStatus; 7] = [
        PhoneStatus::Disconnected,
        PhoneStatus::Connecting,
        PhoneStatus::Pairing,
        PhoneStatus::Connected,
        PhoneStatus::Reconnecting,
        PhoneStatus::LoggedOut,
        PhoneStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhoneStatus::Disconnected => "disconnected",
            PhoneStatus::Connecting => "connecting",
            PhoneStatus::Pairing => "pairing",
            PhoneStatus::Connected => "connected",
            PhoneStatus::Reconnecting => "reconnecting",
            PhoneStatus::LoggedOut => "logged_out",
            PhoneStatus::Failed => "failed",
        }
    }

    /// Whether a phone in this state should be brought back online after a restart.
    pub fn resumes(self) -> bool {
        matches!(
            self,
            PhoneStatus::Connected | PhoneStatus::Connecting | PhoneStatus::Reconnecting
        )
    }
}

impl fmt::Display for PhoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhoneStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown phone status `{s}`"))
    }
}
