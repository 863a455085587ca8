//! XEP-0363 HTTP file upload at `upload.<domain>`: the size limit, the
//! daily quota, how long files are kept and where, with the names of
//! Prosody's mod_http_file_share. The slots' signing key is derived from
//! the data directory's secret when the server starts (`run`), so it
//! survives restarts and never sits in a configuration file.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::modules::upload::{self, Settings, Upload};
use xmpp_core::modules::ModuleSet;

const UPLOAD: Home = Home::Layer(Layer::Services, "upload");

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("services.upload_max_file_size", "upload_max_file_size", UPLOAD, Ty::Int { min: 1, max: 17_179_869_184 }, "10485760", &["XEP-0363 §5"],
        "Largest file, in bytes; a larger request is refused with not-acceptable and <file-too-large> naming this limit (Prosody's http_file_share_size_limit)."),
    key("services.upload_daily_quota", "upload_daily_quota", UPLOAD, Ty::Int { min: 0, max: 1_099_511_627_776 }, "104857600", &["XEP-0363 §5"],
        "Bytes one user may upload per 24 hours (0: no quota); a request beyond it is refused with resource-constraint (Prosody's http_file_share_daily_quota)."),
];

pub const SECTION: Section = Section {
    module: upload::ID,
    keys: KEYS,
    configure,
};

/// How long a slot waits for its `PUT`: long enough for a phone to start
/// a large upload on a slow link.
const SLOT_TTL_MS: u64 = 5 * 60 * 1000;

fn configure(cfg: &Config, set: &mut ModuleSet) {
    set.configure(Upload::new(settings(cfg, Vec::new())));
}

/// The module's settings with `secret`.
pub fn settings(cfg: &Config, secret: Vec<u8>) -> Settings {
    Settings {
        // A domain whose file switches the module off has no service.
        domains: cfg
            .domains
            .iter()
            .filter(|d| {
                cfg.vhost(d)
                    .is_none_or(|v| v.modules.contains_key("upload"))
            })
            .cloned()
            .collect(),
        base_url: base_url(cfg),
        secret,
        max_file_size: max_file_size(cfg),
        daily_quota: cfg.int("services.upload_daily_quota").unwrap_or(100 << 20),
        slot_ttl_ms: SLOT_TTL_MS,
    }
}

/// Largest file, bytes.
pub fn max_file_size(cfg: &Config) -> u64 {
    cfg.int("services.upload_max_file_size").unwrap_or(10 << 20)
}

/// The runtime's side: where files go, how long they stay.
pub fn http(cfg: &Config, secret: Vec<u8>) -> Option<xmpp_runtime::UploadHttpConfig> {
    cfg.modules
        .contains(&"upload")
        .then(|| xmpp_runtime::UploadHttpConfig {
            dir: cfg
                .text("services.upload_path")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| cfg.data_path.join("upload")),
            secret,
            max_file_size: max_file_size(cfg),
            retention_ms: cfg
                .int::<u64>("services.upload_expire_after")
                .unwrap_or(604_800)
                .saturating_mul(1000),
        })
}

/// Where clients reach the files: `http_external_url`, else the HTTPS
/// port of the first domain when there is one, else the plain port.
fn base_url(cfg: &Config) -> String {
    if let Some(url) = cfg.text("interfaces.http_external_url") {
        return url.trim_end_matches('/').to_owned();
    }
    let domain = cfg
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    match cfg.int::<u16>("interfaces.https_port").filter(|p| *p != 0) {
        Some(port) => format!("https://{domain}:{port}"),
        None => format!(
            "http://{domain}:{}",
            cfg.int::<u16>("interfaces.http_port").unwrap_or(5280)
        ),
    }
}

/// The slots' key: derived from the data directory's server secret, so
/// it is the same after a restart and found in no configuration file.
pub fn secret(server_secret: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(server_secret) else {
        return Vec::new();
    };
    mac.update(b"vireo upload slots v1");
    mac.finalize().into_bytes().to_vec()
}
