//! Where media files are kept: one file per message, under `media.dir`, named by the
//! phone's digits and the message id (hex, so any id is a safe file name). A file is
//! written to a temporary file beside the others and renamed into place, so it is either
//! whole or absent. Blocking: call it from `spawn_blocking`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::domain::PhoneNumber;

/// A file as it was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

impl MediaStore {
    /// The store in `root`, created if missing. Temporary files left by a server that
    /// stopped mid-download are deleted.
    pub fn open(root: PathBuf) -> io::Result<Self> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self { root })
    }

    /// A new temporary file to download into; dropped un-kept, it is deleted.
    pub fn temp(&self) -> io::Result<NamedTempFile> {
        NamedTempFile::new_in(self.root.join("tmp"))
    }

    /// Hashes a downloaded file and moves it into place for the message. A file whose
    /// SHA-256 is not `expected` (when given) is refused (`InvalidData`) and deleted.
    pub fn keep(
        &self,
        phone: &PhoneNumber,
        message_id: &str,
        file: NamedTempFile,
        expected: Option<&[u8]>,
    ) -> io::Result<Kept> {
        file.as_file().sync_all()?;
        let mut reader = file.reopen()?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let sha256 = hasher.finalize();
        if let Some(expected) = expected
            && expected != &sha256[..]
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file does not match its SHA-256",
            ));
        }
        let path = self.path(phone, message_id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        file.persist(&path).map_err(|e| e.error)?;
        Ok(Kept {
            sha256: hex::encode(sha256),
            size,
        })
    }

    /// Keeps bytes the gateway already has (media it sent) for the message.
    pub fn put(&self, phone: &PhoneNumber, message_id: &str, data: &[u8]) -> io::Result<Kept> {
        let mut file = self.temp()?;
        file.write_all(data)?;
        self.keep(phone, message_id, file, None)
    }

    /// The message's file, if it is kept.
    pub fn open_file(&self, phone: &PhoneNumber, message_id: &str) -> io::Result<Option<File>> {
        match File::open(self.path(phone, message_id)) {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Deletes every file of the phone (when the phone is deleted).
    pub fn remove_phone(&self, phone: &PhoneNumber) -> io::Result<()> {
        match std::fs::remove_dir_all(self.phone_dir(phone)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn phone_dir(&self, phone: &PhoneNumber) -> PathBuf {
        self.root.join(phone.digits())
    }

    fn path(&self, phone: &PhoneNumber, message_id: &str) -> PathBuf {
        self.phone_dir(phone).join(hex::encode(message_id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_whole_under_its_message_and_gone_with_its_phone() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::open(dir.path().join("media")).unwrap();
        let phone = PhoneNumber::parse("+12015550123", None).unwrap();
        let kept = store.put(&phone, "3EB0/../x", b"hello").unwrap();
        assert_eq!(kept.size, 5);
        assert_eq!(
            kept.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let mut text = String::new();
        store
            .open_file(&phone, "3EB0/../x")
            .unwrap()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        // No temporary file is left behind, and nothing escaped the phone's folder.
        assert_eq!(std::fs::read_dir(dir.path().join("media/tmp")).unwrap().count(), 0);
        assert!(store.open_file(&phone, "other").unwrap().is_none());
        store.remove_phone(&phone).unwrap();
        assert!(store.open_file(&phone, "3EB0/../x").unwrap().is_none());
        store.remove_phone(&phone).unwrap();
    }

    #[test]
    fn a_download_that_does_not_match_its_checksum_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::open(dir.path().to_path_buf()).unwrap();
        let phone = PhoneNumber::parse("+12015550123", None).unwrap();
        let mut file = store.temp().unwrap();
        file.write_all(b"tampered").unwrap();
        let err = store.keep(&phone, "m", file, Some(&[0u8; 32])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(store.open_file(&phone, "m").unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
