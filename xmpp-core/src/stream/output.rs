//! What a connection machine asks its driver to do.

use crate::jid::Jid;
use crate::storage::{RequestId, StorageRequest};
use crate::xml::Element;
use std::collections::VecDeque;

/// One instruction from a connection machine to its driver, polled in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnOutput {
    /// Bytes to write to the transport (already framed XML).
    Write(Vec<u8>),
    /// Flush the writes so far, then run the TLS handshake and call
    /// `tls_established` with the channel-binding data of the new session.
    StartTls,
    /// Perform a storage request and hand the result back with its id.
    Storage { id: RequestId, request: StorageRequest },
    /// The stream authenticated and bound this full JID (server side), or the
    /// client is online as it (client side).
    Bound(Jid),
    /// A stanza: from the client to the hub (server side, `from` stamped and
    /// `to` normalized) or from the server to the application (client side).
    Stanza(Element),
    /// Client side only: negotiation failed (the text says why); a `Close`
    /// follows.
    Failed(String),
    /// Flush pending writes and close the transport.
    Close,
}

/// An output queue that coalesces consecutive writes, so one read that yields
/// several replies becomes one `write` syscall.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    queue: VecDeque<ConnOutput>,
}

impl OutputQueue {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        if let Some(ConnOutput::Write(buf)) = self.queue.back_mut() {
            buf.extend_from_slice(bytes);
        } else {
            self.queue.push_back(ConnOutput::Write(bytes.to_vec()));
        }
    }

    /// Serialize an element (inside a stream whose default namespace is `default_ns`).
    pub(crate) fn write_element(&mut self, e: &Element, default_ns: &str) {
        if let Some(ConnOutput::Write(buf)) = self.queue.back_mut() {
            e.write_to(buf, default_ns);
        } else {
            let mut buf = Vec::with_capacity(256);
            e.write_to(&mut buf, default_ns);
            self.queue.push_back(ConnOutput::Write(buf));
        }
    }

    pub(crate) fn push(&mut self, o: ConnOutput) {
        self.queue.push_back(o);
    }

    pub(crate) fn pop(&mut self) -> Option<ConnOutput> {
        self.queue.pop_front()
    }
}
