//! Protocol modules. Each declares its disco features and answers the iq
//! namespaces it owns, so `disco#info` is derived from what is registered and
//! a new XEP is one file plus one line in [`default_modules`].

pub mod avatar;
pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod disco;
pub mod extdisco;
pub mod hints;
pub mod last;
pub mod mam;
mod ping;
pub mod push;
pub mod register;
pub mod roster;
pub mod stored_xml;
pub mod subscription;
mod time;
mod version;

use crate::xml::Element;

pub use disco::Disco;
pub use last::LastActivity;
pub use ping::Ping;
pub use time::EntityTime;
pub use version::Version;

/// What a module may read while answering.
#[derive(Debug)]
pub struct ModuleCtx<'a> {
    /// The domain being addressed.
    pub domain: &'a str,
    /// Every feature the registered modules advertise (for disco).
    pub features: &'a [&'static str],
    /// Software name and version (XEP-0092).
    pub software: (&'a str, &'a str),
    /// The current time (ms since the Unix epoch), as the driver gave it.
    pub now: crate::time::Millis,
    /// When this hub started (for the server's uptime, XEP-0012).
    pub started: crate::time::Millis,
    /// XEP-0157 contact addresses: (kind, URIs).
    pub contact: &'a [(String, Vec<String>)],
    /// Domains of external components (XEP-0114), listed as disco items.
    pub components: &'a [String],
}

/// A server-side protocol module answering iqs addressed to the server.
pub trait ServerModule: Send + std::fmt::Debug {
    /// Short name, for logs and `module list`.
    fn name(&self) -> &'static str;
    /// Features this module adds to the server's disco#info.
    fn features(&self) -> &'static [&'static str];
    /// Answer an iq `get`/`set` addressed to the server; `None` passes it on.
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element>;
}

/// The modules every server runs, set up from its configuration.
pub fn default_modules(cfg: &crate::hub::HubConfig) -> Vec<Box<dyn ServerModule>> {
    vec![
        Box::new(Disco),
        Box::new(Ping),
        Box::new(Version),
        Box::new(EntityTime),
        Box::new(LastActivity),
        Box::new(extdisco::ExternalServices::new(cfg.turn.clone())),
    ]
}
