//! The retention purge runs on the hub partitions' timer in the runtime,
//! on an idle server too: messages older than the retention disappear from
//! the store without any client doing anything, newer ones stay.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xmpp_core::archive::{ArchiveFilter, ArchiveQuery, ArchivedMessage, IdGenerator, PageRequest};
use xmpp_core::hub::HubConfig;
use xmpp_core::modules::mam::{ArchiveConfig, Archiving};
use xmpp_core::modules::ModuleSet;
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::stream::ServerStreamConfig;
use xmpp_core::Entropy;
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::RuntimeConfig;

fn archived(backend: &dyn Backend, account: &str) -> Vec<ArchivedMessage> {
    let query = ArchiveQuery {
        filter: ArchiveFilter::default(),
        page: PageRequest {
            max: 100,
            after: None,
            before: None,
            backward: false,
        },
    };
    match backend.execute(StorageRequest::QueryArchive {
        account: account.into(),
        query,
    }) {
        StorageResult::ArchivePage(p) => p.items,
        other => panic!("query failed: {other:?}"),
    }
}

#[test]
fn idle_server_purges_expired_messages() {
    let backend = Arc::new(MemoryBackend::new());
    let account = "keeper@localhost";
    let credentials = StoredCredentials::derive("pw", b"salt-of-the-test", 4096).expect("creds");
    assert_eq!(
        backend.execute(StorageRequest::CreateAccount {
            account: account.into(),
            credentials,
        }),
        StorageResult::Done
    );
    let now = xmpp_runtime::clock::now_ms();
    let mut ids = IdGenerator::new(Entropy::from_u64(1));
    let day = 86_400_000;
    // Ten messages from two days ago, one from now.
    for at in (0..10).map(|i| now - 2 * day + i).chain([now]) {
        let message = ArchivedMessage {
            id: ids.next(at),
            with: "other@localhost/r".into(),
            stanza: "<message xmlns='jabber:client'><body>x</body></message>".into(),
        };
        assert_eq!(
            backend.execute(StorageRequest::AppendArchive {
                account: account.into(),
                message,
            }),
            StorageResult::Done
        );
    }
    assert_eq!(archived(backend.as_ref(), account).len(), 11);
    let cfg = RuntimeConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        c2s_port: 0,
        c2s_tls_port: None,
        tls: None,
        stream: ServerStreamConfig::default(),
        hub: HubConfig {
            modules: ModuleSet::standard().with(Archiving::new(ArchiveConfig {
                retention: Some(day),
                first_purge_delay: 50,
                ..ArchiveConfig::default()
            })),
            ..HubConfig::default()
        },
        threads: 1,
        partitions: 3,
        max_connections: 10,
        partition_queue_bytes: 8 * 1024 * 1024,
        c2s_rate_limit: None,
        admin_socket: None,
        scram_iterations: 4096,
        registration_limit: Default::default(),
        address_limits: Default::default(),
        components: None,
        s2s: None,
        http: None,
    };
    let server = xmpp_runtime::start(cfg, backend.clone()).expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left = archived(backend.as_ref(), account);
        if left.len() == 1 || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    server.shutdown(Duration::from_secs(2));
    assert_eq!(left.len(), 1, "only the recent message stays");
    assert_eq!(left[0].id.millis(), now);
}
