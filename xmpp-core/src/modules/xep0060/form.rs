//! `jabber:x:data` forms as XEP-0060 uses them: the FORM_TYPEs of node
//! configuration, meta-data and publish-options; the form handling itself
//! is XEP-0004's ([`crate::modules::data_form`]).

pub use crate::modules::data_form::*;

/// The FORM_TYPE of a node configuration form.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// The FORM_TYPE of a node's disco#info form.
pub const META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";
/// The FORM_TYPE of publish-options.
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
