//! XEP-0077 through the runtime: the registration client that `vireo-bench
//! --register` uses (written against Prosody and ejabberd) creates accounts
//! on a Vireo server that then log in, and the per-IP limit applies to
//! addresses that are not exempt.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use xmpp_core::hub::HubConfig;
use xmpp_core::jid::Jid;
use xmpp_core::stream::client::Registration;
use xmpp_core::stream::{ClientConfig, RegistrationConfig, ServerStreamConfig};
use xmpp_runtime::accounts::add_user;
use xmpp_runtime::client::{register, Client, ClientError, TlsMode};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::tls::{generate_self_signed, server_tls};
use xmpp_runtime::{RegistrationLimit, RunningServer, RuntimeConfig};

fn start(limit: RegistrationLimit) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = generate_self_signed(&["localhost".to_owned()], dir.path()).expect("certificate");
    let tls = Arc::new(server_tls(&paths.cert, &paths.key).expect("TLS config"));
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let taken = Jid::parse("taken@localhost").expect("JID");
    add_user(backend.as_ref(), &taken, "taken-pw", 4096).expect("account");
    let cfg = RuntimeConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        c2s_port: 0,
        c2s_tls_port: Some(0),
        tls: Some(tls),
        stream: ServerStreamConfig {
            registration: Some(RegistrationConfig {
                allow_registration: true,
                min_password_length: 8,
            }),
            ..ServerStreamConfig::default()
        },
        hub: HubConfig::default(),
        threads: 1,
        partitions: 1,
        max_connections: 100,
        partition_queue_bytes: 8 * 1024 * 1024,
        c2s_rate_limit: None,
        admin_socket: None,
        scram_iterations: 4096,
        registration_limit: limit,
        address_limits: Default::default(),
        components: None,
        s2s: None,
        http: None,
    };
    (
        xmpp_runtime::start(cfg, backend).expect("server starts"),
        dir,
    )
}

#[test]
fn bench_client_registers_accounts_that_log_in() {
    // The default limit exempts loopback, as Prosody's whitelist does, so a
    // benchmark can provision many accounts quickly.
    let (server, _dir) = start(RegistrationLimit::default());
    let addr = server.c2s_addr;
    smol::block_on(async {
        for user in ["bench0", "bench1", "bench2"] {
            let r = register(addr, "localhost", user, "bench-pw", TlsMode::StartTls).await;
            assert_eq!(r.expect("registered"), Registration::Created, "{user}");
        }
        let again = register(addr, "localhost", "bench1", "bench-pw", TlsMode::StartTls).await;
        assert_eq!(again.expect("answered"), Registration::AlreadyExists);
        let jid = Jid::parse("bench1@localhost/desk").expect("JID");
        let c = Client::connect(addr, ClientConfig::new(jid, "bench-pw"), false)
            .await
            .expect("the registered account logs in");
        c.close().await.expect("close");
    });
    server.shutdown(std::time::Duration::from_secs(1));
}

#[test]
fn second_registration_from_one_address_waits() {
    let (server, _dir) = start(RegistrationLimit {
        min_seconds: 300,
        exempt: Vec::new(),
    });
    let addr = server.c2s_addr;
    smol::block_on(async {
        // A taken name is refused without using up the address's turn...
        let taken = register(addr, "localhost", "taken", "first-pw", TlsMode::StartTls).await;
        assert_eq!(taken.expect("answered"), Registration::AlreadyExists);
        let first = register(addr, "localhost", "first", "first-pw", TlsMode::StartTls).await;
        assert_eq!(first.expect("registered"), Registration::Created);
        // ...but a second account is refused.
        match register(addr, "localhost", "second", "second-pw", TlsMode::StartTls).await {
            Err(ClientError::Failed(why)) => {
                assert!(why.contains("resource-constraint"), "{why}")
            }
            other => panic!("expected a resource-constraint, got {other:?}"),
        }
        let jid = Jid::parse("second@localhost").expect("JID");
        let login = Client::connect(addr, ClientConfig::new(jid, "second-pw"), false).await;
        assert!(login.is_err(), "no account was created");
    });
    server.shutdown(std::time::Duration::from_secs(1));
}
