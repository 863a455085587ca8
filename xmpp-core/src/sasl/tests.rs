//! Cross-module SCRAM tests: RFC vectors, client↔server round trips, attack
//! cases and a deterministic no-panic fuzz loop.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::*;

const TEST_CB_EXPORTER: &[u8] = b"exporter-bytes-0123456789abcdef!";
const TEST_CB_ENDPOINT: &[u8] = b"cert-hash-0123456789abcdef012345";

fn offered() -> Vec<ChannelBinding> {
    vec![
        ChannelBinding::new(ChannelBindingType::TlsExporter, TEST_CB_EXPORTER),
        ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, TEST_CB_ENDPOINT),
    ]
}

fn creds(password: &str) -> StoredCredentials {
    StoredCredentials::derive(password, b"0123456789abcdef", 4096).expect("derive")
}

const SNONCE: &[u8] = b"server-nonce-bytes-0123456";
const CNONCE: &[u8] = b"client-nonce-bytes-0123456";

fn rfc_vector(mech: Mechanism, cnonce: &str, snonce: &str, salt_b64: &str, msgs: [&str; 4]) {
    let (mut client, cf) =
        ScramClient::new_with_nonce_str(mech, "user", "pencil", cnonce).expect("client");
    assert_eq!(
        String::from_utf8_lossy(&cf),
        format!("n,,n=user,r={cnonce}")
    );

    let (mut server, first) = ScramServer::start(mech, &cf, &[], false).expect("start");
    assert_eq!(first.username, "user");
    assert_eq!(first.authzid, None);

    let salt = STANDARD.decode(salt_b64).expect("salt");
    let c = StoredCredentials::derive("pencil", &salt, 4096).expect("derive");
    let sf = server.server_first_with_nonce_str(Some(&c), snonce);
    assert_eq!(String::from_utf8_lossy(&sf), msgs[0]);

    let cfin = client.handle_server_first(&sf).expect("client final");
    assert_eq!(String::from_utf8_lossy(&cfin), msgs[1]);

    let sfin = server.finish(&cfin).expect("server final");
    assert_eq!(String::from_utf8_lossy(&sfin), msgs[2]);
    client.verify_server_final(&sfin).expect("verify");
    assert!(msgs[3].is_empty());
}

#[test]
fn rfc5802_scram_sha1_example() {
    rfc_vector(
        Mechanism::ScramSha1,
        "fyko+d2lbbFgONRv9qkxdawL",
        "3rfcNHYJY1ZVvWVs7j",
        "QSXCR+Q6sek8bf92",
        [
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            "",
        ],
    );
}

#[test]
fn rfc7677_scram_sha256_example() {
    rfc_vector(
        Mechanism::ScramSha256,
        "rOprNGfwEbeRWgbNEkqO",
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        [
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            "",
        ],
    );
}

/// Runs a full exchange; returns the first failure from either side.
#[allow(clippy::too_many_arguments)] // flat flags read best in the test tables
fn exchange(
    mech: Mechanism,
    username: &str,
    client_password: &str,
    server_creds: Option<&StoredCredentials>,
    client_cb: Option<ChannelBinding>,
    client_supports_plus: bool,
    offered: &[ChannelBinding],
    plus_advertised: bool,
) -> Result<(), SaslFailure> {
    let (mut client, cf) = ScramClient::new(
        mech,
        username,
        client_password,
        CNONCE,
        client_cb,
        client_supports_plus,
    )?;
    let (mut server, first) = ScramServer::start(mech, &cf, offered, plus_advertised)?;
    assert_eq!(first.username, username);
    let sf = server.server_first(server_creds, SNONCE);
    let cfin = client.handle_server_first(&sf)?;
    let sfin = server.finish(&cfin)?;
    client.verify_server_final(&sfin)
}

#[test]
fn round_trips_all_mechanisms_and_bindings() {
    let c = creds("correct horse");
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        // No binding, with and without client support ('n' and 'y').
        for supports in [false, true] {
            assert_eq!(
                exchange(
                    mech,
                    "juliet",
                    "correct horse",
                    Some(&c),
                    None,
                    supports,
                    &[],
                    false
                ),
                Ok(()),
                "{mech} supports={supports}"
            );
        }
        // Offered but not advertised (e.g. the operator disabled PLUS): 'n' is fine.
        assert_eq!(
            exchange(
                mech,
                "juliet",
                "correct horse",
                Some(&c),
                None,
                false,
                &offered(),
                true
            ),
            Ok(())
        );
    }
    for mech in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        for cb in offered() {
            assert_eq!(
                exchange(
                    mech,
                    "juliet",
                    "correct horse",
                    Some(&c),
                    Some(cb.clone()),
                    true,
                    &offered(),
                    true
                ),
                Ok(()),
                "{mech} {:?}",
                cb.kind
            );
        }
    }
}

#[test]
fn username_needing_escapes_round_trips() {
    let c = creds("pw");
    assert_eq!(
        exchange(
            Mechanism::ScramSha256,
            "a,b=c",
            "pw",
            Some(&c),
            None,
            false,
            &[],
            false
        ),
        Ok(())
    );
    let (_, cf) =
        ScramClient::new(Mechanism::ScramSha256, "a,b=c", "pw", CNONCE, None, false).expect("new");
    assert!(String::from_utf8_lossy(&cf).starts_with("n,,n=a=2Cb=3Dc,r="));
}

#[test]
fn password_normalization_applies_on_both_sides() {
    let c = creds("caf\u{e9}");
    assert_eq!(
        exchange(
            Mechanism::ScramSha256,
            "u",
            "cafe\u{301}",
            Some(&c),
            None,
            false,
            &[],
            false
        ),
        Ok(())
    );
}

/// Imported credentials (XEP-0227) holding one hash's keys: that SCRAM
/// works with the old password, the other fails like a wrong password
/// (same salt in server-first, so nothing tells the two apart), and PLAIN
/// checks the half that is there.
#[test]
fn imported_credentials_with_one_hash() {
    let full = creds("old password");
    let sha1_only = StoredCredentials::imported(
        full.iterations,
        full.salt.clone(),
        Some(full.sha1.clone()),
        None,
    )
    .expect("valid SHA-1 keys");
    let sha256_only = StoredCredentials::imported(
        full.iterations,
        full.salt.clone(),
        None,
        Some(full.sha256.clone()),
    )
    .expect("valid SHA-256 keys");
    let run = |mech, c: &StoredCredentials, pw| {
        exchange(mech, "juliet", pw, Some(c), None, false, &[], false)
    };
    assert_eq!(
        run(Mechanism::ScramSha1, &sha1_only, "old password"),
        Ok(())
    );
    assert_eq!(
        run(Mechanism::ScramSha256, &sha1_only, "old password"),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        run(Mechanism::ScramSha256, &sha256_only, "old password"),
        Ok(())
    );
    assert_eq!(
        run(Mechanism::ScramSha1, &sha256_only, "old password"),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        run(Mechanism::ScramSha1, &sha1_only, "wrong"),
        Err(SaslFailure::NotAuthorized)
    );
    for c in [&sha1_only, &sha256_only] {
        assert!(c.verify_password("old password"));
        assert!(!c.verify_password("wrong"));
    }
    // The missing hash's server-first shows the account's real salt.
    let (_, cf) = ScramClient::new(Mechanism::ScramSha256, "juliet", "x", CNONCE, None, false)
        .expect("client");
    let (mut server, _) =
        ScramServer::start(Mechanism::ScramSha256, &cf, &[], false).expect("server");
    let (_, salt, iterations) = parse_server_first(&server.server_first(Some(&sha1_only), SNONCE));
    assert_eq!((salt, iterations), (full.salt.clone(), full.iterations));
    // Keys that cannot be Vireo's are refused.
    let short = ScramKeys {
        stored_key: vec![1; 19],
        server_key: vec![1; 20],
    };
    assert!(StoredCredentials::imported(4096, b"s".to_vec(), Some(short), None).is_none());
    assert!(StoredCredentials::imported(4096, b"s".to_vec(), None, None).is_none());
    assert!(StoredCredentials::imported(4096, Vec::new(), Some(full.sha1.clone()), None).is_none());
    assert!(StoredCredentials::imported(0, b"s".to_vec(), Some(full.sha1), None).is_none());
}

#[test]
fn wrong_password_is_not_authorized() {
    let c = creds("right");
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        assert_eq!(
            exchange(mech, "juliet", "wrong", Some(&c), None, false, &[], false),
            Err(SaslFailure::NotAuthorized)
        );
    }
}

fn parse_server_first(sf: &[u8]) -> (String, Vec<u8>, u32) {
    let s = std::str::from_utf8(sf).expect("utf8");
    let parts: Vec<&str> = s.split(',').collect();
    assert_eq!(parts.len(), 3, "{s}");
    let nonce = parts[0].strip_prefix("r=").expect("r=").to_owned();
    let salt = STANDARD
        .decode(parts[1].strip_prefix("s=").expect("s="))
        .expect("salt b64");
    let i = parts[2].strip_prefix("i=").expect("i=").parse().expect("i");
    (nonce, salt, i)
}

#[test]
fn unknown_user_looks_normal_then_fails() {
    let mech = Mechanism::ScramSha256;
    let (mut client, cf) =
        ScramClient::new(mech, "nobody", "pw", CNONCE, None, false).expect("client");
    let (mut server, _) = ScramServer::start(mech, &cf, &[], false).expect("start");
    let sf = server.server_first(None, SNONCE);
    let (nonce, salt, i) = parse_server_first(&sf);
    assert!(nonce.starts_with(&STANDARD.encode(CNONCE)));
    assert_eq!(salt.len(), 16);
    assert_eq!(i, MIN_ITERATIONS);
    let cfin = client
        .handle_server_first(&sf)
        .expect("client proceeds normally");
    assert_eq!(server.finish(&cfin), Err(SaslFailure::NotAuthorized));

    // Deterministic: same inputs, same decoy.
    let (mut server2, _) = ScramServer::start(mech, &cf, &[], false).expect("start");
    assert_eq!(server2.server_first(None, SNONCE), sf);
    // server_first is idempotent.
    assert_eq!(server2.server_first(None, b"other"), sf);
}

#[test]
fn decoy_salt_is_stable_per_user() {
    let mech = Mechanism::ScramSha1;
    let salt_for = |user: &str, snonce: &[u8]| {
        let (_, cf) = ScramClient::new(mech, user, "pw", CNONCE, None, false).expect("client");
        let (server, _) = ScramServer::start(mech, &cf, &[], false).expect("start");
        let mut server = server.with_decoy(b"server secret", 10_000);
        let (_, salt, i) = parse_server_first(&server.server_first(None, snonce));
        assert_eq!(i, 10_000);
        salt
    };
    assert_eq!(
        salt_for("ghost", b"n1-n1-n1-n1-n1-n1-n1"),
        salt_for("ghost", b"n2-n2-n2-n2-n2-n2-n2")
    );
    assert_ne!(
        salt_for("ghost", b"n1-n1-n1-n1-n1-n1-n1"),
        salt_for("spook", b"n1-n1-n1-n1-n1-n1-n1")
    );
}

#[test]
fn y_flag_with_plus_advertised_is_downgrade() {
    let c = creds("pw");
    assert_eq!(
        exchange(
            Mechanism::ScramSha256,
            "u",
            "pw",
            Some(&c),
            None,
            true,
            &offered(),
            true
        ),
        Err(SaslFailure::NotAuthorized)
    );
    // Not advertised: 'y' is legitimate.
    assert_eq!(
        exchange(
            Mechanism::ScramSha256,
            "u",
            "pw",
            Some(&c),
            None,
            true,
            &[],
            false
        ),
        Ok(())
    );
}

#[test]
fn channel_binding_mismatch_is_not_authorized() {
    let c = creds("pw");
    for mech in [Mechanism::ScramSha1Plus, Mechanism::ScramSha256Plus] {
        let mitm = ChannelBinding::new(ChannelBindingType::TlsExporter, b"other channel".to_vec());
        assert_eq!(
            exchange(
                mech,
                "u",
                "pw",
                Some(&c),
                Some(mitm),
                true,
                &offered(),
                true
            ),
            Err(SaslFailure::NotAuthorized)
        );
        // A type the TLS layer did not offer.
        let only_endpoint = &offered()[1..];
        let exp = ChannelBinding::new(ChannelBindingType::TlsExporter, TEST_CB_EXPORTER);
        assert_eq!(
            exchange(
                mech,
                "u",
                "pw",
                Some(&c),
                Some(exp),
                true,
                only_endpoint,
                true
            ),
            Err(SaslFailure::NotAuthorized)
        );
    }
}

#[test]
fn client_final_tampering() {
    let c = creds("pw");
    let mech = Mechanism::ScramSha256;
    let run = |edit: &dyn Fn(String) -> String| {
        let (mut client, cf) = ScramClient::new(mech, "u", "pw", CNONCE, None, false).expect("c");
        let (mut server, _) = ScramServer::start(mech, &cf, &[], false).expect("s");
        let sf = server.server_first(Some(&c), SNONCE);
        let cfin = String::from_utf8(client.handle_server_first(&sf).expect("cf")).expect("utf8");
        let r = server.finish(edit(cfin).as_bytes());
        // One attempt only.
        assert_eq!(
            server.finish(b"c=biws,r=x,p=AAAA"),
            Err(SaslFailure::MalformedRequest)
        );
        r
    };
    assert!(run(&|s| s).is_ok());
    // Nonce mismatch.
    assert_eq!(
        run(&|s| s.replacen(",r=", ",r=X", 1)),
        Err(SaslFailure::NotAuthorized)
    );
    // Claims a different gs2 header ("y,," instead of "n,,").
    assert_eq!(
        run(&|s| s.replacen("c=biws", "c=eSws", 1)),
        Err(SaslFailure::NotAuthorized)
    );
    // Malformed base64 proof.
    assert_eq!(
        run(&|s| format!("{}!!", &s[..s.len() - 2])),
        Err(SaslFailure::IncorrectEncoding)
    );
    // Proof of wrong length.
    assert_eq!(
        run(&|s| format!("{},p=AAAA", &s[..s.rfind(",p=").unwrap_or(0)])),
        Err(SaslFailure::MalformedRequest)
    );
    // Unknown optional extension before the proof is ignored — but it's part
    // of AuthMessage, so the proof no longer matches.
    assert_eq!(
        run(&|s| s.replacen(",p=", ",x=1,p=", 1)),
        Err(SaslFailure::NotAuthorized)
    );
    // Missing proof / garbage.
    assert_eq!(
        run(&|_| "c=biws".into()),
        Err(SaslFailure::MalformedRequest)
    );
    assert_eq!(run(&|_| String::new()), Err(SaslFailure::MalformedRequest));
}

#[test]
fn client_first_validation() {
    let start = |mech, msg: &[u8]| ScramServer::start(mech, msg, &offered(), false).map(|(_, f)| f);
    let m = Mechanism::ScramSha256;
    assert!(start(m, b"n,,n=u,r=abc").is_ok());
    assert!(start(m, b"n,,n=u,r=abc,x=ext").is_ok());
    let f = start(m, b"n,a=u,n=u,r=abc").expect("self authzid");
    assert_eq!(f.authzid.as_deref(), Some("u"));
    let f = start(m, b"n,a=u@example.org,n=u,r=abc").expect("jid authzid");
    assert_eq!(f.authzid_domain(), Some("example.org"));
    assert_eq!(
        start(m, b"n,a=admin,n=u,r=abc"),
        Err(SaslFailure::InvalidAuthzid)
    );
    assert_eq!(
        start(m, b"n,a=a=ZZ,n=u,r=abc"),
        Err(SaslFailure::InvalidAuthzid)
    );
    for bad in [
        &b""[..],
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=u,r=abc",
        b"n,b=u,n=u,r=abc",
        b"n,,m=ext,n=u,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=u",
        b"n,,n=u,r=",
        b"n,,n=u,r=a b",
        b"n,,r=abc,n=u",
        b"n,,n=u=ZZ,r=abc",
        b"n,,n=u,r=abc,garbage",
        b"n,,n=u,r=abc,m=late",
        b"n,,n=u\xff,r=abc",
        b"p=tls-exporter,,n=u,r=abc", // p= with non-PLUS mechanism
    ] {
        assert_eq!(
            start(m, bad),
            Err(SaslFailure::MalformedRequest),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut big = b"n,,n=u,r=".to_vec();
    big.resize(MAX_MESSAGE_LEN + 1, b'a');
    assert_eq!(start(m, &big), Err(SaslFailure::MalformedRequest));

    let p = Mechanism::ScramSha256Plus;
    assert!(start(p, b"p=tls-exporter,,n=u,r=abc").is_ok());
    assert!(start(p, b"p=tls-server-end-point,,n=u,r=abc").is_ok());
    assert_eq!(
        start(p, b"n,,n=u,r=abc"),
        Err(SaslFailure::MalformedRequest)
    );
    assert_eq!(
        start(p, b"y,,n=u,r=abc"),
        Err(SaslFailure::MalformedRequest)
    );
    assert_eq!(
        start(p, b"p=tls-unique,,n=u,r=abc"),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        start(p, b"p=,,n=u,r=abc"),
        Err(SaslFailure::MalformedRequest)
    );
    assert!(matches!(
        ScramServer::start(p, b"p=tls-exporter,,n=u,r=abc", &[], true),
        Err(SaslFailure::NotAuthorized)
    ));
    assert!(matches!(
        ScramServer::start(Mechanism::Plain, b"n,,n=u,r=abc", &[], false),
        Err(SaslFailure::InvalidMechanism)
    ));
}

#[test]
fn client_validates_server_first() {
    let mech = Mechanism::ScramSha1;
    let cn = STANDARD.encode(CNONCE);
    let handle = |sf: String| {
        let (mut client, _) = ScramClient::new(mech, "u", "pw", CNONCE, None, false).expect("c");
        client.handle_server_first(sf.as_bytes()).map(|_| ())
    };
    assert_eq!(handle(format!("r={cn}srv,s=c2FsdA==,i=4096")), Ok(()));
    assert_eq!(handle(format!("r={cn}srv,s=c2FsdA==,i=4096,x=ext")), Ok(()));
    assert_eq!(
        handle(format!("r={cn}srv,s=c2FsdA==,i=4095")),
        Err(SaslFailure::MechanismTooWeak)
    );
    assert_eq!(
        handle(format!("r={cn}srv,s=c2FsdA==,i=1")),
        Err(SaslFailure::MechanismTooWeak)
    );
    assert_eq!(
        handle(format!("r=other{cn},s=c2FsdA==,i=4096")),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        handle(format!("r={cn},s=c2FsdA==,i=4096")),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        handle(format!("m=ext,r={cn}srv,s=c2FsdA==,i=4096")),
        Err(SaslFailure::MalformedRequest)
    );
    assert_eq!(
        handle(format!("r={cn}srv,s=c2Fsd,i=4096")),
        Err(SaslFailure::IncorrectEncoding)
    );
    for bad in [
        format!("r={cn}srv,s=,i=4096"),
        format!("r={cn}srv,s=c2FsdA==,i=+4096"),
        format!("r={cn}srv,s=c2FsdA==,i=99999999999"),
        format!("r={cn}srv,s=c2FsdA==,i=4294967295"),
        format!("r={cn}srv,s=c2FsdA==,i="),
        format!("r={cn}srv,i=4096,s=c2FsdA=="),
        format!("r={cn}srv,s=c2FsdA=="),
        String::new(),
    ] {
        assert_eq!(
            handle(bad.clone()),
            Err(SaslFailure::MalformedRequest),
            "{bad}"
        );
    }
}

#[test]
fn client_validates_server_final() {
    let c = creds("pw");
    let mech = Mechanism::ScramSha256;
    let (mut client, cf) = ScramClient::new(mech, "u", "pw", CNONCE, None, false).expect("c");
    assert_eq!(
        client.verify_server_final(b"v=AAAA"),
        Err(SaslFailure::MalformedRequest)
    );
    let (mut server, _) = ScramServer::start(mech, &cf, &[], false).expect("s");
    let sf = server.server_first(Some(&c), SNONCE);
    let cfin = client.handle_server_first(&sf).expect("cf");
    let sfin = server.finish(&cfin).expect("sfin");
    assert_eq!(client.verify_server_final(&sfin), Ok(()));
    assert_eq!(
        client.verify_server_final(b"e=invalid-proof"),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        client.verify_server_final(b"v=AAAA"),
        Err(SaslFailure::NotAuthorized)
    );
    assert_eq!(
        client.verify_server_final(b"v=!!"),
        Err(SaslFailure::IncorrectEncoding)
    );
    assert_eq!(
        client.verify_server_final(b"x=1"),
        Err(SaslFailure::MalformedRequest)
    );
    assert_eq!(
        client.verify_server_final(b""),
        Err(SaslFailure::MalformedRequest)
    );
    // A server-final replayed from another exchange (other nonce) is rejected.
    let (mut client2, cf2) =
        ScramClient::new(mech, "u", "pw", b"another-client-nonce-xyz", None, false).expect("c");
    let (mut server2, _) = ScramServer::start(mech, &cf2, &[], false).expect("s");
    let sf2 = server2.server_first(Some(&c), SNONCE);
    let cfin2 = client2.handle_server_first(&sf2).expect("cf");
    assert_eq!(
        client2.verify_server_final(&sfin),
        Err(SaslFailure::NotAuthorized)
    );
    assert!(server2.finish(&cfin2).is_ok());
}

#[test]
fn client_constructor_validation() {
    let cb = ChannelBinding::new(ChannelBindingType::TlsExporter, b"x".to_vec());
    assert!(matches!(
        ScramClient::new(Mechanism::Plain, "u", "pw", CNONCE, None, false),
        Err(SaslFailure::InvalidMechanism)
    ));
    assert!(matches!(
        ScramClient::new(Mechanism::ScramSha256Plus, "u", "pw", CNONCE, None, true),
        Err(SaslFailure::InvalidMechanism)
    ));
    assert!(matches!(
        ScramClient::new(
            Mechanism::ScramSha256,
            "u",
            "pw",
            CNONCE,
            Some(cb.clone()),
            true
        ),
        Err(SaslFailure::InvalidMechanism)
    ));
    assert!(matches!(
        ScramClient::new(Mechanism::ScramSha256, "", "pw", CNONCE, None, false),
        Err(SaslFailure::MalformedRequest)
    ));
    assert!(matches!(
        ScramClient::new(Mechanism::ScramSha256, "u", "pw", b"", None, false),
        Err(SaslFailure::MalformedRequest)
    ));
    assert!(matches!(
        ScramClient::new(Mechanism::ScramSha256, "u", "", CNONCE, None, false),
        Err(SaslFailure::MalformedRequest)
    ));
    let (_, cf) = ScramClient::new(
        Mechanism::ScramSha256Plus,
        "u",
        "pw",
        CNONCE,
        Some(cb),
        true,
    )
    .expect("c");
    assert!(cf.starts_with(b"p=tls-exporter,,n=u,r="));
    let (_, cf) = ScramClient::new(Mechanism::ScramSha1, "u", "pw", CNONCE, None, true).expect("c");
    assert!(cf.starts_with(b"y,,n=u,r="));
}

/// xorshift64*: deterministic bytes without a rand dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Random bytes, biased towards SCRAM syntax so parsing gets deep.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"nypacrsivme=,23CDbiws+/AZ\0\xff\xc3";
        let len = self.below(max + 1);
        (0..len)
            .map(|_| {
                if self.below(4) == 0 {
                    self.next() as u8
                } else {
                    ALPHABET[self.below(ALPHABET.len())]
                }
            })
            .collect()
    }
    /// A valid message with a few random edits.
    fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        for _ in 0..=self.below(4) {
            let pos = self.below(v.len() + 1);
            match self.below(3) {
                0 if pos < v.len() => {
                    v.remove(pos);
                }
                1 if pos < v.len() => v[pos] = self.next() as u8,
                _ => v.insert(pos, b",=\0a"[self.below(4)]),
            }
        }
        v
    }
}

#[test]
fn fuzz_server_never_panics() {
    let c = creds("pw");
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mechs = [
        Mechanism::ScramSha1,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha256Plus,
    ];
    // A genuine client-final to mutate, per mechanism family.
    let (mut client, cf) =
        ScramClient::new(Mechanism::ScramSha256, "u", "pw", CNONCE, None, false).expect("c");
    let (mut s, _) = ScramServer::start(Mechanism::ScramSha256, &cf, &[], false).expect("s");
    let sf = s.server_first(Some(&c), SNONCE);
    let good_final = client.handle_server_first(&sf).expect("cf");

    let mut accepted = 0;
    for round in 0..4000 {
        let mech = mechs[g.below(mechs.len())];
        let first = match round % 3 {
            0 => g.bytes(120),
            1 => g.mutate(b"n,,n=u,r=abcdef"),
            _ => g.mutate(b"p=tls-exporter,a=u,n=u,r=abcdef"),
        };
        let Ok((mut server, _)) = ScramServer::start(mech, &first, &offered(), g.below(2) == 0)
        else {
            continue;
        };
        accepted += 1;
        let creds = (g.below(2) == 0).then_some(&c);
        let _ = server.server_first(creds, &g.bytes(30));
        let fin = if g.below(2) == 0 {
            g.bytes(200)
        } else {
            g.mutate(&good_final)
        };
        assert!(server.finish(&fin).is_err());
    }
    assert!(accepted > 100, "fuzz too shallow: {accepted}");
}

#[test]
fn fuzz_client_and_plain_never_panic() {
    let mut g = Gen(0xD1B5_4A32_D192_ED03);
    let cn = STANDARD.encode(CNONCE);
    for round in 0..2000 {
        let (mut client, _) =
            ScramClient::new(Mechanism::ScramSha1, "u", "pw", CNONCE, None, false).expect("c");
        let sf = if round % 2 == 0 {
            g.bytes(150)
        } else {
            // Keep i= short so a mutation cannot make PBKDF2 slow.
            g.mutate(format!("r={cn}x,s=c2FsdA==,i=4096").as_bytes())
        };
        let _ = client.handle_server_first(&sf);
        let _ = client.verify_server_final(&g.bytes(60));
        let _ = parse_plain(&g.bytes(60));
    }
}
