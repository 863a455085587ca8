//! The server-wide secret behind decoy credentials for unknown accounts
//! (SCRAM salts, PLAIN checks). It must outlive restarts: a decoy salt that
//! changes at every restart while real salts never do tells a prober which
//! accounts exist. Kept in the data directory, readable by the owner only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "decoy-secret";

/// Length of the secret, bytes.
const LEN: usize = 32;

/// Why the secret could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum DecoySecretError {
    /// Reading, creating or restricting the file failed.
    #[error("decoy secret {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but does not hold a secret.
    #[error("decoy secret {path} is {len} bytes, expected {LEN} (delete it to create a new one)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The secret in `data_dir`, created (random, mode 0600) on first start.
pub fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, DecoySecretError> {
    let path = data_dir.join(FILE_NAME);
    let io = |source| DecoySecretError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(secret) if secret.len() == LEN => {
            // Tighten a secret someone loosened.
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
            Ok(secret)
        }
        Ok(other) => Err(DecoySecretError::Corrupt {
            path: path.clone(),
            len: other.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = crate::clock::random_seed().to_vec();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            file.write_all(&secret).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(secret)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(dir.path()).expect("created");
        assert_eq!(first.len(), LEN);
        let path = dir.path().join(FILE_NAME);
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(dir.path()).expect("read"), first);
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            load_or_create(dir.path()),
            Err(DecoySecretError::Corrupt { len: 5, .. })
        ));
    }
}
