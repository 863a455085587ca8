//! One server c2s machine driven with arbitrary client bytes, for the fuzz
//! target and the proptest that runs the same property on stable.
//!
//! Credential lookups are answered with those of "alice" (password
//! "secret"), STARTTLS completes at once, stanzas are echoed back through the
//! writer, and every output is drained after each input. The property: no
//! panic, and no input makes the machine produce outputs without end.

use crate::entropy::Entropy;
use crate::modules::register::AccountOpResult;
use crate::sasl::StoredCredentials;
use crate::storage::{StorageRequest, StorageResult};
use crate::stream::{ConnOutput, ServerStream, ServerStreamConfig};
use crate::time::Millis;
use std::sync::{Arc, OnceLock};

/// A client stream header for `localhost`.
pub const HEADER: &str = "<stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// STARTTLS, PLAIN as alice, bind: each part its own read, as a real client
/// waits for the answer before sending the next.
pub const LOGIN: [&str; 6] = [
    HEADER,
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    HEADER,
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
    HEADER,
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>home</resource></bind></iq>",
];

/// More outputs than this for one input means the machine loops.
const MAX_OUTPUTS: usize = 100_000;

/// Alice's stored credentials, derived once (PBKDF2 is slow), or `None` if
/// derivation failed (it does not for this fixed input).
fn alice() -> Option<&'static StoredCredentials> {
    static CREDS: OnceLock<Option<StoredCredentials>> = OnceLock::new();
    CREDS
        .get_or_init(|| StoredCredentials::derive("secret", b"vireo-test-salt", 4096).ok())
        .as_ref()
}

/// A server stream with its driver.
#[derive(Debug)]
pub struct C2sDriver {
    stream: ServerStream,
    now: Millis,
}

impl Default for C2sDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl C2sDriver {
    /// A fresh connection (encryption not required and in-band registration
    /// open, so every path is reachable).
    pub fn new() -> Self {
        let cfg = Arc::new(ServerStreamConfig {
            require_encryption: false,
            registration: Some(crate::stream::RegistrationConfig {
                allow_registration: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut d = C2sDriver {
            stream: ServerStream::new(cfg, Entropy::from_u64(1), 0, None),
            now: 0,
        };
        d.drain();
        d
    }

    /// Log in as alice, one read per step.
    pub fn login(&mut self) {
        for part in LOGIN {
            self.feed(part.as_bytes());
        }
    }

    /// One read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.now += 1;
        self.stream.handle_input(self.now, bytes);
        self.drain();
    }

    /// The transport breaks without a closing handshake (a resumable
    /// session hibernates, XEP-0198).
    pub fn lose_transport(&mut self) {
        self.now += 1;
        self.stream.transport_lost(self.now);
        self.drain();
    }

    /// Fire the machine's next timer, if any.
    pub fn fire_timer(&mut self) {
        if let Some(deadline) = self.stream.poll_timeout() {
            self.now = deadline.max(self.now);
            self.stream.handle_timeout(self.now);
            self.drain();
        }
    }

    /// The machine under test.
    pub fn stream(&self) -> &ServerStream {
        &self.stream
    }

    /// Answer and drain every output, including those the answers produce.
    ///
    /// # Panics
    /// When the machine keeps producing outputs: that is the bug this
    /// harness exists to find.
    fn drain(&mut self) {
        let mut n = 0;
        while let Some(out) = self.stream.poll_output() {
            n += 1;
            assert!(n < MAX_OUTPUTS, "the stream produces outputs without end");
            match out {
                ConnOutput::StartTls => self.stream.tls_established(self.now, vec![]),
                ConnOutput::Storage { id, request } => {
                    let result = match request {
                        StorageRequest::LoadCredentials { account } => StorageResult::Credentials(
                            account.starts_with("alice@").then(alice).flatten().cloned(),
                        ),
                        _ => StorageResult::Done,
                    };
                    self.stream.handle_storage(self.now, id, result);
                }
                ConnOutput::Account { id, .. } => {
                    self.stream
                        .handle_account(self.now, id, AccountOpResult::Done)
                }
                ConnOutput::CheckPassword { id, check } => {
                    self.stream.handle_password_check(self.now, id, check.run())
                }
                ConnOutput::AuthStarted { .. }
                | ConnOutput::AuthFailed { .. }
                | ConnOutput::Authenticated { .. } => {}
                ConnOutput::Stanza(el) => self.stream.send_stanza(&el),
                // Nothing else holds a session here: every resume misses.
                ConnOutput::Resume { .. } => self.stream.resume(self.now, None),
                // No hub here, nothing stored: durable at once.
                ConnOutput::Fence(seq) => self.stream.fence_done(self.now, seq),
                ConnOutput::SmEnabled(_)
                | ConnOutput::Resumed(_)
                | ConnOutput::Undelivered(_)
                | ConnOutput::PageDelivered => {}
                ConnOutput::DropTransport => {
                    self.stream.transport_lost(self.now);
                }
                ConnOutput::Write(_) | ConnOutput::Bound(_) | ConnOutput::Close => {}
            }
        }
    }
}
