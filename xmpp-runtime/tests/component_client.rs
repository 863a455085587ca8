//! The runtime's component connection against a real server: the right
//! secret connects, a wrong one is told `<not-authorized/>`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use xmpp_core::hub::HubConfig;
use xmpp_core::stream::StreamErrorCondition;
use xmpp_core::stream::{ComponentClientConfig, ComponentSecret, ComponentStreamConfig};
use xmpp_runtime::component_client::{ComponentConnection, ComponentError};
use xmpp_runtime::storage::{Backend, MemoryBackend};
use xmpp_runtime::{ComponentListener, RuntimeConfig};

#[test]
fn the_right_secret_connects_and_a_wrong_one_is_refused() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let cfg = RuntimeConfig {
        hub: HubConfig {
            components: vec!["bot.localhost".into()],
            ..HubConfig::default()
        },
        components: Some(ComponentListener {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            stream: ComponentStreamConfig {
                components: vec![ComponentSecret {
                    domain: "bot.localhost".into(),
                    secret: "right".into(),
                }],
                ..ComponentStreamConfig::default()
            },
        }),
        ..RuntimeConfig::default()
    };
    let server = xmpp_runtime::start(cfg, backend).expect("server starts");
    let addr = server.component_addr.expect("component listener");
    smol::block_on(async {
        let wrong = ComponentConnection::connect(
            addr,
            ComponentClientConfig::new("bot.localhost", "wrong"),
        )
        .await;
        assert!(
            matches!(
                wrong,
                Err(ComponentError::Closed(Some(
                    StreamErrorCondition::NotAuthorized
                )))
            ),
            "{wrong:?}"
        );
        let right = ComponentConnection::connect(
            addr,
            ComponentClientConfig::new("bot.localhost", "right"),
        )
        .await
        .expect("the right secret connects");
        right.close().await.expect("closes");
    });
    server.shutdown(std::time::Duration::from_secs(1));
}
