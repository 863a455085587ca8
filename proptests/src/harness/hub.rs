//! The hub fed stanza sequences from several sessions, through the
//! simulated world (`xmpp_core::sim::World`): sessions, routing, presence,
//! rosters, offline storage, archives, carbons, a component.
//!
//! The input is a script, one action per line (what
//! `fuzz/seeds.py` extracts from `spec/transcripts/`):
//!
//! | line | action |
//! |---|---|
//! | `a>BYTES` | session `a` sends BYTES (any bytes: stanzas, broken XML, nonzas) |
//! | `a+` | session `a` connects again (a new connection, same resource) |
//! | `a-` | session `a`'s transport breaks (XEP-0198 sessions hibernate) |
//! | `e>BYTES` | the component `echo.localhost` sends BYTES |
//! | `~MS` | MS milliseconds of simulated time pass, timers fire |
//!
//! Sessions: `a` alice/phone, `b` bob/laptop, `c` carol/desk, `d`
//! alice/tablet; each logs in (SCRAM, bind) the first time it is used.
//! Other lines are ignored. The properties: nothing panics; every byte the
//! server writes to a session is well-formed XML a client can parse; and
//! once every connection is gone and the resumption timeout has passed, the
//! hub holds no session (nothing leaks).

use super::login::{self, OutputCheck, ACCOUNTS};
use xmpp_core::hub::ConnId;
use xmpp_core::sim::World;
use xmpp_core::stream::component::NS as COMPONENT_NS;

/// The sessions: actor byte, account index, resource.
const SESSIONS: [(u8, usize, &str); 4] = [
    (b'a', 0, "phone"),
    (b'b', 1, "laptop"),
    (b'c', 2, "desk"),
    (b'd', 0, "tablet"),
];

/// Longer than every timer (resumption: 5 minutes; hub: retention).
const SETTLE_MS: u64 = 24 * 3600 * 1000;

/// One live connection and the check of what the server writes to it.
struct Live {
    conn: ConnId,
    check: OutputCheck,
}

/// The world and its sessions.
pub struct Script {
    world: World,
    sessions: [Option<Live>; 4],
    component: Option<Live>,
    /// Connections replaced by `a+`, still open until the server closes
    /// them (a resource conflict), still read.
    earlier: Vec<Live>,
    /// Every stanza the server wrote, when recording (tests).
    log: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// A world with nobody connected.
    pub fn new() -> Self {
        Script {
            world: login::world(),
            sessions: [None, None, None, None],
            component: None,
            earlier: Vec::new(),
            log: None,
        }
    }

    /// A script that records every stanza the server writes ([`log`](Self::log)).
    pub fn recording() -> Self {
        Script {
            log: Some(String::new()),
            ..Self::new()
        }
    }

    /// The stanzas the server wrote so far, as XML (empty unless recording).
    pub fn log(&self) -> &str {
        self.log.as_deref().unwrap_or_default()
    }

    /// Run one line of the script.
    pub fn line(&mut self, line: &[u8]) {
        let Some((&actor, rest)) = line.split_first() else {
            return;
        };
        if actor == b'~' {
            let ms = std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0);
            self.world.advance(ms.min(SETTLE_MS));
            self.drain();
            return;
        }
        let Some((&op, payload)) = rest.split_first() else {
            return;
        };
        if actor == b'e' {
            if op == b'>' {
                let conn = self.component().conn;
                self.world.client_sends(conn, payload);
            }
            self.drain();
            return;
        }
        let Some(i) = SESSIONS.iter().position(|(a, _, _)| *a == actor) else {
            return;
        };
        match op {
            b'>' => {
                let conn = self.session(i).conn;
                self.world.client_sends(conn, payload);
            }
            b'+' => {
                self.drain();
                if let Some(old) = self.sessions[i].take() {
                    self.earlier.push(old);
                }
                self.session(i);
            }
            b'-' => {
                if let Some(live) = self.sessions[i].take() {
                    self.world.disconnect(live.conn);
                }
            }
            _ => {}
        }
        self.drain();
    }

    /// The session's connection, logging it in first if needed.
    fn session(&mut self, i: usize) -> &mut Live {
        let slot = &mut self.sessions[i];
        if slot.is_none() {
            // A refused login (the fuzzer removed the account) leaves an
            // unauthenticated connection, which takes the bytes all the same.
            let (_, account, resource) = SESSIONS[i];
            *slot = Some(
                match login::login(&mut self.world, ACCOUNTS[account], Some(resource)) {
                    Some(conn) => Live {
                        conn,
                        check: OutputCheck::new("jabber:client"),
                    },
                    None => Live {
                        conn: self.world.connect(true),
                        check: OutputCheck::unchecked(),
                    },
                },
            );
        }
        let Some(live) = slot.as_mut() else {
            unreachable!("filled above")
        };
        live
    }

    fn component(&mut self) -> &mut Live {
        if self.component.is_none() {
            let conn = login::component_login(&mut self.world);
            self.world.take_server_output(conn);
            self.component = Some(Live {
                conn,
                check: OutputCheck::new(COMPONENT_NS),
            });
        }
        let Some(live) = self.component.as_mut() else {
            unreachable!("filled above")
        };
        live
    }

    /// Take and check everything the server wrote.
    fn drain(&mut self) {
        let live = self.sessions.iter_mut().flatten();
        for live in live.chain(&mut self.component).chain(&mut self.earlier) {
            let out = self.world.take_server_output(live.conn);
            let stanzas = live.check.feed(&out);
            if let Some(log) = &mut self.log {
                for el in stanzas {
                    log.push_str(&el.to_xml());
                    log.push('\n');
                }
            }
        }
    }

    /// Drop every connection, let every timer fire, and check that the hub
    /// holds no session.
    pub fn finish(mut self) {
        self.drain();
        let sessions = self.sessions.iter_mut().filter_map(Option::take);
        for live in sessions.chain(self.earlier.drain(..)) {
            self.world.disconnect(live.conn);
        }
        if let Some(live) = self.component.take() {
            self.world.disconnect(live.conn);
        }
        self.world.advance(SETTLE_MS);
        assert_eq!(
            self.world.hub().session_count(),
            0,
            "sessions left in the hub after every connection ended"
        );
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut script = Script::new();
    for line in data.split(|&b| b == b'\n') {
        script.line(line);
    }
    script.finish();
}
