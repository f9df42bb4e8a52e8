//! Files of the sandbox under `<data_dir>/sandbox/`: `world.json` (virtual accounts and
//! groups) and `devices/<number>.json`, one per linked gateway phone: its "keys".
//! Writes go to a temporary file first and are renamed into place, so a crash never
//! leaves a half-written file.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::SandboxError;
use crate::domain::{Jid, PhoneNumber};

/// A gateway phone's link to its account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub jid: Jid,
    pub lid: Jid,
    pub push_name: String,
    pub linked_at: DateTime<Utc>,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Result<Self, SandboxError> {
        std::fs::create_dir_all(dir.join("devices")).map_err(storage)?;
        Ok(Self { dir })
    }

    pub fn load_world<T: DeserializeOwned>(&self) -> Result<Option<T>, SandboxError> {
        read_json(self.dir.join("world.json"))
    }

    pub fn save_world<T: Serialize>(&self, world: &T) -> Result<(), SandboxError> {
        write_json(self.dir.join("world.json"), world)
    }

    pub fn load_link(&self, phone: &PhoneNumber) -> Result<Option<Link>, SandboxError> {
        read_json(self.link_path(phone))
    }

    pub fn save_link(&self, phone: &PhoneNumber, link: &Link) -> Result<(), SandboxError> {
        write_json(self.link_path(phone), link)
    }

    pub fn delete_link(&self, phone: &PhoneNumber) -> Result<(), SandboxError> {
        match std::fs::remove_file(self.link_path(phone)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(storage(err)),
            _ => Ok(()),
        }
    }

    fn link_path(&self, phone: &PhoneNumber) -> PathBuf {
        self.dir.join("devices").join(format!("{}.json", phone.digits()))
    }
}

fn read_json<T: DeserializeOwned>(path: PathBuf) -> Result<Option<T>, SandboxError> {
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SandboxError::Storage(format!("{}: {e}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(storage(err)),
    }
}

fn write_json<T: Serialize>(path: PathBuf, value: &T) -> Result<(), SandboxError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| SandboxError::Storage(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(storage)?;
    std::fs::rename(&tmp, &path).map_err(storage)
}

fn storage(err: std::io::Error) -> SandboxError {
    SandboxError::Storage(err.to_string())
}
