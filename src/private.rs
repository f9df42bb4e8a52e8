//! The data directory is the login: the database holds the JWT secret, the password hash
//! and webhook secrets, and `whatsapp/` holds every phone's Signal keys. Only the user
//! running the gateway may read it: the directory is created `0700`, everything in it
//! `0600`, and looser modes found at start-up are tightened with a warning.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Files the server process creates from now on are private to its user (umask 077).
pub fn restrict_new_files() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates `dir` (mode 0700) if needed and tightens what is already in it. Returns how
/// many entries were readable by others before.
pub fn secure_data_dir(dir: &Path) -> io::Result<usize> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut loosened = 0;
    tighten(dir, &mut loosened)?;
    if loosened > 0 {
        tracing::warn!(
            dir = %dir.display(),
            entries = loosened,
            "the data directory was readable by other users; it is now private to this user (0700, files 0600)"
        );
    }
    Ok(loosened)
}

fn tighten(path: &Path, loosened: &mut usize) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        // A link's target may be anywhere (a mounted volume): leave it alone.
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o777;
    let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700 | wanted & 0o700))?;
        *loosened += 1;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            tighten(&entry?.path(), loosened)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_data_dir_is_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir_all(dir.join("whatsapp")).unwrap();
        std::fs::write(dir.join("wagate.db"), b"secret").unwrap();
        std::fs::write(dir.join("whatsapp/12015550101.db"), b"keys").unwrap();
        for (path, m) in [(&dir, 0o755), (&dir.join("whatsapp"), 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::fs::set_permissions(dir.join("wagate.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(secure_data_dir(&dir).unwrap(), 4);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("whatsapp")), 0o700);
        assert_eq!(mode(&dir.join("wagate.db")), 0o600);
        assert_eq!(mode(&dir.join("whatsapp/12015550101.db")), 0o600);
        // Already private: nothing to say.
        assert_eq!(secure_data_dir(&dir).unwrap(), 0);
    }

    #[test]
    fn a_new_data_dir_is_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("new/data");
        secure_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
