//! The system's nameservers, read from /etc/resolv.conf with the
//! `resolv-conf` crate (the parser hickory's own resolver uses).
//!
//! Only the `nameserver` lines matter here: s2s looks up fully qualified
//! names, so `search`/`ndots` never apply, and timeouts come from Vireo's
//! own budget rather than `options timeout:`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The usual place.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// glibc reads at most three nameservers (MAXNS); so do we.
pub const MAX_NAMESERVERS: usize = 3;

/// A resolv.conf larger than this is not read (they are a few hundred
/// bytes).
pub const MAX_RESOLV_CONF_BYTES: u64 = 64 * 1024;

/// Why the system's nameservers are unknown.
#[derive(Debug, thiserror::Error)]
pub enum NameserverError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is over [`MAX_RESOLV_CONF_BYTES`].
    #[error("{path}: larger than {MAX_RESOLV_CONF_BYTES} bytes")]
    TooLarge { path: String },
    /// The file does not parse.
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
}

/// The nameservers of `path` (port 53), at most [`MAX_NAMESERVERS`];
/// none listed means the local host (127.0.0.1 and ::1), as glibc does.
pub fn from_file(path: &Path) -> Result<Vec<SocketAddr>, NameserverError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_err = |source| NameserverError::Read {
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = Vec::new();
    file.take(MAX_RESOLV_CONF_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_RESOLV_CONF_BYTES {
        return Err(NameserverError::TooLarge { path: shown });
    }
    parse(&text).map_err(|reason| NameserverError::Parse {
        path: shown,
        reason,
    })
}

/// The nameservers of resolv.conf text, as [`from_file`].
pub fn parse(text: &[u8]) -> Result<Vec<SocketAddr>, String> {
    let config = resolv_conf::Config::parse(text).map_err(|e| e.to_string())?;
    Ok(config
        .get_nameservers_or_local()
        .iter()
        .take(MAX_NAMESERVERS)
        // An IPv6 scope (fe80::1%eth0) is dropped: link-local nameservers
        // are rare enough not to warrant interface lookups.
        .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_in_order_and_at_most_three() {
        let text = b"# generated\nsearch example.com\noptions ndots:2 timeout:1\n\
            nameserver 192.0.2.1\nnameserver 2001:db8::53\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n";
        let got = parse(text).expect("parses");
        let want: Vec<SocketAddr> = ["192.0.2.1:53", "[2001:db8::53]:53", "192.0.2.3:53"]
            .iter()
            .map(|s| s.parse().expect("addr"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn no_nameserver_means_the_local_host() {
        let got = parse(b"search example.com\n").expect("parses");
        assert_eq!(
            got,
            vec![
                "127.0.0.1:53".parse::<SocketAddr>().expect("v4"),
                "[::1]:53".parse().expect("v6")
            ]
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_at_it_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        let line = b"nameserver 192.0.2.1\n";
        let mut text = line.to_vec();
        text.resize(MAX_RESOLV_CONF_BYTES as usize, b'#');
        // Pad with a comment line that ends exactly at the limit.
        text[line.len()] = b'#';
        let last = text.len() - 1;
        text[last] = b'\n';
        std::fs::write(&path, &text).expect("write");
        assert_eq!(from_file(&path).expect("at the limit").len(), 1);
        text.push(b'\n');
        std::fs::write(&path, &text).expect("write");
        assert!(matches!(
            from_file(&path),
            Err(NameserverError::TooLarge { .. })
        ));
        assert!(matches!(
            from_file(&dir.path().join("missing")),
            Err(NameserverError::Read { .. })
        ));
    }
}
