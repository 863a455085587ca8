//! Server-to-server (federation) building blocks of the runtime.
//!
//! So far: finding where a remote domain's server listens
//! ([`resolve::Resolver`]), and probing it the way an outgoing stream will
//! meet it ([`probe`], for `vireo check s2s`). Nothing here carries
//! stanzas yet.

mod addresses;
pub mod dns_client;
pub mod nameservers;
pub mod overrides;
pub mod probe;
pub mod resolve;
pub mod srv_order;

pub use addresses::{FamilyOutcome, HostLookup};
pub use overrides::{OverrideError, RouteHost, RouteTarget, S2sOverrides};
pub use resolve::{
    Candidate, DnsBudget, Resolution, ResolveError, Resolver, Route, Service, ServiceLookup,
    SrvOutcome, XMPP_SERVER_PORT,
};
pub use srv_order::SrvRecord;
