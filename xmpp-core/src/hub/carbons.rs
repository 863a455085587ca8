//! XEP-0280 in the hub: which sessions enabled carbons, and the copies.

use super::{ConnId, Hub};
use crate::modules::carbons::{toggle, wrap};
use crate::stanza::iq_result;
use crate::xml::Element;

impl Hub {
    /// `<enable/>` / `<disable/>` from a session.
    pub(super) fn carbons_toggle(&mut self, account: &str, conn: ConnId, iq: &Element) {
        let Some(on) = toggle(iq) else { return };
        if let Some(s) = self
            .account_mut(account)
            .and_then(|a| a.session_by_conn_mut(conn))
        {
            s.carbons = on;
        }
        let mut r = iq_result(iq);
        r.remove_attr("from");
        self.deliver(conn, r);
    }

    /// Copy `msg` (sent by, or delivered to, the account) to its other
    /// carbon-enabled resources; `skip` got the message itself.
    /// Whether a session of the account other than `conn` wants carbons:
    /// without one, a sent message needs no copy made at all.
    pub(super) fn has_carbon_targets(&self, account: &str, conn: ConnId) -> bool {
        self.account(account)
            .is_some_and(|a| a.sessions.values().any(|s| s.carbons && s.conn != conn))
    }

    pub(super) fn carbon_copies(
        &mut self,
        account: &str,
        msg: &Element,
        sent: bool,
        skip: &[ConnId],
    ) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let targets: Vec<(ConnId, String)> = acc
            .sessions
            .values()
            .filter(|s| s.carbons && !skip.contains(&s.conn))
            .map(|s| (s.conn, s.jid.to_string()))
            .collect();
        for (conn, jid) in targets {
            let copy = wrap(msg, sent, account, &jid);
            self.deliver(conn, copy);
        }
    }
}
