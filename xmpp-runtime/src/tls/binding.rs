//! Channel-binding data from an established TLS connection, for
//! SCRAM-*-PLUS: `tls-exporter` (RFC 9266) and `tls-server-end-point`
//! (RFC 5929). `tls-unique` is not offered (unsafe, absent from TLS 1.3).

use rustls::{ClientConnection, ProtocolVersion, ServerConnection};
use sha2::{Digest, Sha256};
use xmpp_core::sasl::{ChannelBinding, ChannelBindingType};

/// RFC 9266 §2: the exporter label for `tls-exporter`.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// RFC 9266 §2: 32 bytes of keying material.
const EXPORTER_LEN: usize = 32;

/// `tls-exporter` data, only on TLS 1.3: RFC 9266 forbids it on TLS 1.2
/// without extended master secret, and we do not check for that.
fn exporter(conn: &rustls::ConnectionCommon<impl Sized>) -> Option<ChannelBinding> {
    if conn.is_handshaking() || conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return None;
    }
    match conn.export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None) {
        Ok(data) => Some(ChannelBinding::new(ChannelBindingType::TlsExporter, data)),
        Err(e) => {
            tracing::warn!(error = %e, "tls-exporter channel binding unavailable");
            None
        }
    }
}

/// `tls-server-end-point` data: the hash of the server's end-entity
/// certificate. RFC 5929 §4.1 uses the certificate's signature hash, with
/// SHA-256 replacing MD5/SHA-1; our certificates are signed with SHA-256, so
/// SHA-256 is used unconditionally (a certificate signed with SHA-384/512
/// would need that hash instead).
fn server_end_point(cert_der: &[u8]) -> ChannelBinding {
    ChannelBinding::new(
        ChannelBindingType::TlsServerEndPoint,
        Sha256::digest(cert_der).to_vec(),
    )
}

/// Every binding the server can offer on `conn`, preferred first:
/// `tls-exporter` (TLS 1.3 only), then `tls-server-end-point` computed from
/// `server_cert_der`, the end-entity certificate this connection presented
/// (see [`super::ServerTls::end_entity_der`]). Empty while handshaking.
pub fn server_channel_bindings(
    conn: &ServerConnection,
    server_cert_der: &[u8],
) -> Vec<ChannelBinding> {
    if conn.is_handshaking() {
        return Vec::new();
    }
    exporter(conn)
        .into_iter()
        .chain(Some(server_end_point(server_cert_der)))
        .collect()
}

/// Every binding the client can compute on `conn`, preferred first:
/// `tls-exporter` (TLS 1.3 only), then `tls-server-end-point` from the
/// certificate the server presented. Empty while handshaking.
pub fn client_channel_bindings(conn: &ClientConnection) -> Vec<ChannelBinding> {
    if conn.is_handshaking() {
        return Vec::new();
    }
    let end_point = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| server_end_point(cert.as_ref()));
    exporter(conn).into_iter().chain(end_point).collect()
}

/// The binding a client should use on `conn`: `tls-exporter` on TLS 1.3,
/// otherwise `tls-server-end-point`; `None` while handshaking.
pub fn client_channel_binding(conn: &ClientConnection) -> Option<ChannelBinding> {
    client_channel_bindings(conn).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::config::insecure_client_config_with;
    use crate::tls::{generate_self_signed, insecure_client_config, server_tls};
    use futures_rustls::{TlsAcceptor, TlsConnector};
    use rustls::pki_types::ServerName;
    use rustls::ClientConfig;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use smol::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    struct Outcome {
        server: Vec<ChannelBinding>,
        client: Vec<ChannelBinding>,
        preferred: Option<ChannelBinding>,
        cert: Vec<u8>,
        alpn: Option<Vec<u8>>,
    }

    /// Handshakes over loopback TCP with a freshly generated certificate,
    /// exchanges a few bytes, and reports what each side derived.
    fn handshake(client: Arc<ClientConfig>) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate_self_signed(&["localhost".to_owned()], dir.path()).unwrap();
        let tls = server_tls(&paths.cert, &paths.key).unwrap();
        smol::block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = TlsAcceptor::from(tls.config.clone());
            let connector = TlsConnector::from(client);
            let server = async {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut s = acceptor.accept(tcp).await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
                s.write_all(b"pong").await.unwrap();
                s.flush().await.unwrap();
                let conn = s.get_ref().1;
                (
                    server_channel_bindings(conn, &tls.end_entity_der),
                    conn.alpn_protocol().map(<[u8]>::to_vec),
                )
            };
            let client = async {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                let mut c = connector.connect(name, tcp).await.unwrap();
                c.write_all(b"ping").await.unwrap();
                c.flush().await.unwrap();
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"pong");
                let conn = c.get_ref().1;
                (client_channel_bindings(conn), client_channel_binding(conn))
            };
            let ((server, alpn), (client, preferred)) = smol::future::zip(server, client).await;
            Outcome {
                server,
                client,
                preferred,
                cert: tls.end_entity_der.clone(),
                alpn,
            }
        })
    }

    #[test]
    fn tls13_both_sides_agree() {
        let Outcome {
            server,
            client,
            preferred,
            cert,
            alpn,
        } = handshake(insecure_client_config());
        assert_eq!(alpn, None);
        assert_eq!(server.len(), 2);
        assert_eq!(server, client);
        assert_eq!(server[0].kind, ChannelBindingType::TlsExporter);
        assert_eq!(server[0].data.len(), 32);
        assert_eq!(server[1].kind, ChannelBindingType::TlsServerEndPoint);
        assert_eq!(server[1].data, Sha256::digest(&cert).to_vec());
        assert_eq!(preferred.as_ref(), Some(&server[0]));
    }

    #[test]
    fn tls12_has_only_server_end_point() {
        let client = insecure_client_config_with(&[&rustls::version::TLS12]).unwrap();
        let Outcome {
            server,
            client,
            preferred,
            cert,
            ..
        } = handshake(Arc::new(client));
        assert_eq!(server, client);
        assert_eq!(
            server,
            vec![ChannelBinding::new(
                ChannelBindingType::TlsServerEndPoint,
                Sha256::digest(&cert).to_vec()
            )]
        );
        assert_eq!(preferred.as_ref(), Some(&server[0]));
    }

    #[test]
    fn alpn_xmpp_client_is_negotiated() {
        let mut client = insecure_client_config_with(&[&rustls::version::TLS13]).unwrap();
        client.alpn_protocols = vec![b"xmpp-client".to_vec()];
        let out = handshake(Arc::new(client));
        assert_eq!(out.alpn.as_deref(), Some(&b"xmpp-client"[..]));
        assert_eq!(out.server, out.client);
    }
}

/// Virtual hosts: the certificate follows SNI, and so does
/// tls-server-end-point.
#[cfg(test)]
mod sni_tests {
    use super::*;
    use crate::tls::{generate_self_signed, insecure_client_config, server_tls_sni};
    use futures_rustls::{TlsAcceptor, TlsConnector};
    use rustls::pki_types::ServerName;
    use smol::net::{TcpListener, TcpStream};

    /// The certificate the client saw, and the server's tls-server-end-point
    /// data matches the client's.
    fn served_for(tls: &crate::tls::ServerTls, name: &str) -> Vec<u8> {
        smol::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let acceptor = TlsAcceptor::from(tls.config.clone());
            let connector = TlsConnector::from(insecure_client_config());
            let server = async {
                let (tcp, _) = listener.accept().await.expect("accept");
                let s = acceptor.accept(tcp).await.expect("server handshake");
                let conn = s.get_ref().1;
                server_channel_bindings(conn, tls.end_entity_for(conn.server_name()))
            };
            let client = async {
                let tcp = TcpStream::connect(addr).await.expect("connect");
                let name = ServerName::try_from(name.to_owned()).expect("name");
                let c = connector
                    .connect(name, tcp)
                    .await
                    .expect("client handshake");
                let conn = c.get_ref().1;
                let cert = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref().to_vec())
                    .unwrap_or_default();
                (cert, client_channel_bindings(conn))
            };
            let (server_cb, (cert, client_cb)) = smol::future::zip(server, client).await;
            assert_eq!(server_cb, client_cb, "channel bindings agree for {name}");
            cert
        })
    }

    #[test]
    fn each_domain_gets_its_own_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = generate_self_signed(&["a.example".to_owned()], &dir.path().join("a")).expect("a");
        let b = generate_self_signed(&["b.example".to_owned()], &dir.path().join("b")).expect("b");
        let tls = server_tls_sni(
            (&a.cert, &a.key),
            &[("b.example".to_owned(), b.cert.clone(), b.key.clone())],
        )
        .expect("config");
        let b_der = tls.by_name.get("b.example").cloned().expect("b registered");
        assert_eq!(served_for(&tls, "b.example"), b_der);
        assert_eq!(served_for(&tls, "a.example"), tls.end_entity_der);
        assert_eq!(served_for(&tls, "other.example"), tls.end_entity_der);
        assert_ne!(b_der, tls.end_entity_der);
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = generate_self_signed(&["a.example".to_owned()], &dir.path().join("a")).expect("a");
        let b = generate_self_signed(&["b.example".to_owned()], &dir.path().join("b")).expect("b");
        let err = server_tls_sni(
            (&a.cert, &a.key),
            &[("b.example".to_owned(), b.cert.clone(), a.key.clone())],
        );
        assert!(err.is_err());
    }
}
