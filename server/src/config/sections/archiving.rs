//! XEP-0313 message archives (the `mam` module): retention, the XEP-0441
//! default preference and the page size.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::archive::DefaultPref;
use xmpp_core::modules::mam::{self, ArchiveConfig, Archiving};
use xmpp_core::modules::ModuleSet;

const ARCHIVING: Home = Home::Layer(Layer::Storage, "archiving");

/// XEP-0441 default archiving preferences.
const ARCHIVE_PREFERENCES: &[&str] = &["always", "roster", "never"];

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("storage.archive_retention_days", "archive_retention_days", ARCHIVING, Ty::Int { min: 0, max: 36_500 }, "0", &["XEP-0313 §3.1"],
        "Days archived messages are kept; older ones are deleted by an hourly purge (0 = keep them forever)."),
    key("storage.archive_default_preference", "archive_default_preference", ARCHIVING, Ty::Choice(ARCHIVE_PREFERENCES), "\"always\"", &["XEP-0441"],
        "What is archived for users who set no preference: \"always\" (every conversation), \"roster\" (only with contacts in the roster) or \"never\"."),
    key("storage.archive_max_page_size", "archive_max_page_size", ARCHIVING, Ty::Int { min: 1, max: 1000 }, "250", &["XEP-0313 §4.3", "XEP-0059"],
        "Most messages one archive query returns, whatever the client's <max/> asks (a query without <max/> gets 50 or this, if smaller)."),
];

pub const SECTION: Section = Section {
    module: mam::ID,
    keys: KEYS,
    configure,
};

fn configure(cfg: &Config, set: &mut ModuleSet) {
    set.configure(Archiving::new(archive_config(cfg)));
}

/// The purge timings are not configurable: they keep the module's.
fn archive_config(cfg: &Config) -> ArchiveConfig {
    let defaults = ArchiveConfig::default();
    let days: u64 = cfg.int("storage.archive_retention_days").unwrap_or(0);
    let max_page = cfg
        .int("storage.archive_max_page_size")
        .unwrap_or(defaults.max_page);
    ArchiveConfig {
        default_pref: cfg
            .text("storage.archive_default_preference")
            .and_then(|p| DefaultPref::parse(&p))
            .unwrap_or(defaults.default_pref),
        retention: (days > 0).then(|| days.saturating_mul(86_400_000)),
        max_page,
        default_page: defaults.default_page.min(max_page),
        ..defaults
    }
}
