//! XEP-0215 external service discovery: the STUN/TURN server advertised,
//! with Prosody's `mod_turn_external` names.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::modules::extdisco::{self, ExternalServices, TurnConfig};
use xmpp_core::modules::ModuleSet;

const EXTENSIONS: Home = Home::Layer(Layer::Protocol, "extensions");

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("extdisco.turn_external_host", "turn_external_host", EXTENSIONS, Ty::Str, "", &["XEP-0215"],
        "Host name or IP address of the STUN/TURN server advertised to clients (unset: nothing is advertised)."),
    key("extdisco.turn_external_port", "turn_external_port", EXTENSIONS, Ty::Int { min: 1, max: 65535 }, "3478", &["XEP-0215", "RFC 8489", "RFC 8656"],
        "STUN/TURN port of that server."),
    key("extdisco.turn_external_secret", "turn_external_secret", EXTENSIONS, Ty::Str, "", &["XEP-0215 §3.3"],
        "Secret shared with the TURN server (coturn's static-auth-secret): clients get time-limited TURN credentials derived from it (unset: STUN only). `config show` hides it; VIREO_TURN_SECRET sets it from the environment."),
    key("extdisco.turn_external_ttl", "turn_external_ttl", EXTENSIONS, Ty::Int { min: 60, max: 31_536_000 }, "86400", &["XEP-0215"],
        "Seconds the TURN credentials stay valid."),
    key("extdisco.turn_external_tcp", "turn_external_tcp", EXTENSIONS, Ty::Bool, "false", &["XEP-0215"],
        "Also advertise STUN and TURN over TCP."),
    key("extdisco.turn_external_tls_port", "turn_external_tls_port", EXTENSIONS, Ty::Int { min: 1, max: 65535 }, "", &["XEP-0215"],
        "Port of TURN over TLS (`turns`), if the server offers it."),
    key("extdisco.turn_external_user", "turn_external_user", EXTENSIONS, Ty::Str, "", &["XEP-0215"],
        "User part of the TURN credentials' username (unset: the requesting account's bare JID)."),
];

pub const SECTION: Section = Section {
    module: extdisco::ID,
    keys: KEYS,
    configure,
};

/// Without a host nothing is advertised; the other keys describe that
/// host (`checks` warns when they are set without it). The fallbacks are
/// never taken: port and ttl have schema defaults.
fn configure(cfg: &Config, set: &mut ModuleSet) {
    let turn = cfg
        .text("extdisco.turn_external_host")
        .map(|host| TurnConfig {
            host,
            port: cfg.int("extdisco.turn_external_port").unwrap_or(3478),
            secret: cfg.text("extdisco.turn_external_secret"),
            ttl_secs: cfg.int("extdisco.turn_external_ttl").unwrap_or(86_400),
            tcp: cfg.flag("extdisco.turn_external_tcp"),
            tls_port: cfg.int("extdisco.turn_external_tls_port"),
            user: cfg.text("extdisco.turn_external_user"),
        });
    set.configure(ExternalServices::new(turn));
}
