//! Self-signed certificate generation, so `vireo run` works with no setup.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};

use super::TlsError;

/// Where a generated certificate and its key were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8), mode 0600.
    pub key: PathBuf,
}

/// Generates a self-signed certificate (ECDSA P-256) whose subject
/// alternative names are `domains` and writes `DIR/<first-domain>.crt` and
/// `DIR/<first-domain>.key` as PEM, replacing any existing files.
///
/// Files are written to a temporary name and renamed, so a crash never leaves
/// a truncated key behind, and the key is created with mode 0600 so it is
/// never readable by others, not even briefly.
pub fn generate_self_signed(domains: &[String], dir: &Path) -> Result<CertPaths, TlsError> {
    let first = domains.first().ok_or(TlsError::NoDomains)?;
    // The first domain becomes a file name: refuse anything that could
    // escape `dir` or be hidden.
    if first.is_empty()
        || first.starts_with('.')
        || first.contains(['/', '\\', '\0'])
        || domains.iter().any(String::is_empty)
    {
        return Err(TlsError::InvalidDomain(first.clone()));
    }

    let mut params = CertificateParams::new(domains.to_vec()).map_err(TlsError::Generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, first.as_str());
    // ServerAuth for c2s, ClientAuth too because a server presents the same
    // certificate when it connects out for s2s.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key_pair = KeyPair::generate().map_err(TlsError::Generate)?;
    let cert = params.self_signed(&key_pair).map_err(TlsError::Generate)?;

    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let paths = CertPaths {
        cert: dir.join(format!("{first}.crt")),
        key: dir.join(format!("{first}.key")),
    };
    write_atomically(&paths.key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&paths.cert, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(
        cert = %paths.cert.display(),
        key = %paths.key.display(),
        domains = ?domains,
        "generated a self-signed certificate"
    );
    Ok(paths)
}

/// Writes `data` to `path` via a sibling temporary file created with `mode`,
/// fsynced, then renamed over `path`: readers see the old file or the new
/// one, never half of it, and a key is never readable by others meanwhile.
pub fn write_file_atomically(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    // The umask may have narrowed `mode`; make the final mode exact.
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(data))
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    write_file_atomically(path, data, mode).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cert_and_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let domains = vec![
            "example.com".to_owned(),
            "conference.example.com".to_owned(),
        ];
        let paths = generate_self_signed(&domains, &dir.path().join("certs")).unwrap();
        assert_eq!(paths.cert, dir.path().join("certs/example.com.crt"));
        assert_eq!(paths.key, dir.path().join("certs/example.com.key"));
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let cert = std::fs::read_to_string(&paths.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(&paths.key).unwrap();
        assert!(key.contains("PRIVATE KEY-----"));
        // Regenerating replaces the files and keeps the key private.
        generate_self_signed(&domains, &dir.path().join("certs")).unwrap();
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rejects_bad_domains() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate_self_signed(&[], dir.path()),
            Err(TlsError::NoDomains)
        ));
        for bad in ["../evil", "", ".hidden", "a/b"] {
            assert!(matches!(
                generate_self_signed(&[bad.to_owned()], dir.path()),
                Err(TlsError::InvalidDomain(_))
            ));
        }
    }
}
