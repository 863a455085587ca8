//! XEP-0357 push notifications: what notifications tell app servers.

use super::Section;
use crate::config::schema::{key, Home, KeySpec, Ty};
use crate::config::Config;
use crate::modules::Layer;
use xmpp_core::modules::push::{self, Push, PushSettings};
use xmpp_core::modules::ModuleSet;

const EXPERIMENTAL: Home = Home::Layer(Layer::Protocol, "experimental");

#[rustfmt::skip]
const KEYS: &[KeySpec] = &[
    key("protocol.push_notification_with_body", "push_notification_with_body", EXPERIMENTAL, Ty::Bool, "false", &["XEP-0357 §9"],
        "Include the last message's body in push notifications. Off: the app server and the platform's push service would read every message."),
    key("protocol.push_notification_with_sender", "push_notification_with_sender", EXPERIMENTAL, Ty::Bool, "false", &["XEP-0357 §9"],
        "Include the last message's sender in push notifications. Off (as in Prosody): the app server and the platform's push service would learn who writes to whom."),
    key("protocol.push_max_registrations", "push_max_registrations", EXPERIMENTAL, Ty::Int { min: 1, max: 1000 }, "16", &["XEP-0357"],
        "Push registrations kept per account; enabling one more drops the oldest."),
];

pub const SECTION: Section = Section {
    module: push::ID,
    keys: KEYS,
    configure,
};

fn configure(cfg: &Config, set: &mut ModuleSet) {
    let defaults = PushSettings::default();
    set.configure(Push::new(PushSettings {
        with_body: cfg.flag("protocol.push_notification_with_body"),
        with_sender: cfg.flag("protocol.push_notification_with_sender"),
        max_registrations: cfg
            .int("protocol.push_max_registrations")
            .unwrap_or(defaults.max_registrations),
    }));
}
