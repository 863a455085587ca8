//! Budgets of the service, against the simulated world's hub.

use super::*;

#[test]
fn notification_type_follows_the_configuration() {
    let e = Element::new(EVENT, "purge").with_attr("node", "n");
    let m = notification("pubsub.localhost", "bob@localhost", false, e.clone());
    assert_eq!(m.attr("type"), None);
    let m = notification("pubsub.localhost", "bob@localhost", true, e);
    assert_eq!(m.attr("type"), Some("headline"));
    assert_eq!(m.attr("from"), Some("pubsub.localhost"));
}
