//! Server-to-server building blocks of the runtime: finding where a remote
//! domain's server listens ([`resolve::Resolver`]), connecting to it
//! (`connect.rs`), the queue of an outgoing link (`link_queue.rs`), the
//! settings ([`S2sConfig`]), and probing a peer the way a link will meet it
//! ([`probe`], for `vireo check s2s`). The tasks that use them are
//! `crate::federation`'s.

mod addresses;
pub mod config;
pub(crate) mod connect;
pub mod dns_client;
pub(crate) mod link_queue;
pub mod nameservers;
pub mod overrides;
pub mod probe;
pub mod resolve;
pub mod srv_order;

pub use addresses::{FamilyOutcome, HostLookup};
pub use config::S2sConfig;
pub use overrides::{OverrideError, RouteHost, RouteTarget, S2sOverrides};
pub use resolve::{
    Candidate, DnsBudget, Resolution, ResolveError, Resolver, Route, Service, ServiceLookup,
    SrvOutcome, XMPP_SERVER_PORT,
};
pub use srv_order::SrvRecord;
