//! A BOSH session seen from both ends: HTTP requests come in on one side
//! (`http/bosh.rs` waits here for their answers), and the c2s connection
//! task reads and writes it like a socket on the other
//! ([`Transport::Bosh`](crate::transport::Transport)), so the session
//! behind it is the same connection code as on TCP: stream management,
//! hibernation, mailboxes, limits and all.
//!
//! The pure [`BoshSession`] decides everything; this holds it under a
//! lock, carries its outputs to whoever waits for them and drives its
//! timers from whichever side is waiting. The stream's writes are
//! refused (a socket whose buffer is full) while more than the session's
//! budget waits for a request to carry it.

use crate::clock::now_ms;
use event_listener::Event;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use xmpp_core::bosh::{BoshOutput, BoshSession, ReqId};
use xmpp_core::time::Millis;
use xmpp_core::Element;

/// Most bytes handed to the stream per read, like a socket read.
const READ_CHUNK: usize = 64 * 1024;

/// The live sessions by `sid`.
#[derive(Default)]
pub(crate) struct BoshRegistry {
    sessions: Mutex<HashMap<String, Arc<BoshPipe>>>,
}

impl BoshRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<BoshPipe>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session `sid`, if it is live.
    pub(crate) fn get(&self, sid: &str) -> Option<Arc<BoshPipe>> {
        self.lock().get(sid).cloned()
    }

    /// Sessions live now (for `/metrics`).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn insert(&self, pipe: Arc<BoshPipe>) {
        self.lock().insert(pipe.sid.clone(), pipe);
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }
}

struct State {
    session: BoshSession,
    /// Bytes for the stream, in order.
    to_stream: VecDeque<u8>,
    /// Answers waiting for their HTTP request's task.
    answers: HashMap<ReqId, Vec<u8>>,
    next_req: ReqId,
    /// `Some(clean)` once the session ended.
    ended: Option<bool>,
    /// The stream's writer, waiting for room.
    writer: Option<Waker>,
}

/// One BOSH session between its HTTP requests and its c2s connection.
pub(crate) struct BoshPipe {
    sid: String,
    state: Mutex<State>,
    /// Something for the stream: bytes, or the end.
    for_stream: Event,
    /// Answers for requests are ready.
    answered: Event,
    registry: Weak<BoshRegistry>,
}

impl BoshPipe {
    /// A pipe for a session just created by its request 0 (whose id it
    /// returns), registered under its `sid` until it ends.
    pub(crate) fn create(
        registry: &Arc<BoshRegistry>,
        session: BoshSession,
    ) -> (Arc<BoshPipe>, ReqId) {
        let pipe = Arc::new(BoshPipe {
            sid: session.sid().to_owned(),
            state: Mutex::new(State {
                session,
                to_stream: VecDeque::new(),
                answers: HashMap::new(),
                next_req: 1,
                ended: None,
                writer: None,
            }),
            for_stream: Event::new(),
            answered: Event::new(),
            registry: Arc::downgrade(registry),
        });
        registry.insert(pipe.clone());
        pipe.drain(&mut pipe.lock());
        (pipe, 0)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand a request to the session; its id, to wait for the answer.
    pub(crate) fn request(&self, body: Element) -> ReqId {
        let mut state = self.lock();
        let req = state.next_req;
        state.next_req += 1;
        state.session.handle_request(now_ms(), req, body);
        self.drain(&mut state);
        req
    }

    /// Wait for the answer to `req`, driving the session's timers while
    /// waiting (its `wait` ends the wait; `give_up` bounds it in case the
    /// session forgot the request).
    pub(crate) async fn answer(&self, req: ReqId, give_up: Duration) -> Option<Vec<u8>> {
        let started = std::time::Instant::now();
        loop {
            let listener = self.answered.listen();
            let deadline = {
                let mut state = self.lock();
                self.tick(&mut state);
                if let Some(body) = state.answers.remove(&req) {
                    return Some(body);
                }
                if state.ended.is_some() {
                    return None;
                }
                state.session.poll_timeout()
            };
            let left = give_up.checked_sub(started.elapsed())?;
            let wait = deadline
                .map(|d| Duration::from_millis(d.saturating_sub(now_ms())))
                .map_or(left, |d| d.min(left));
            smol::future::or(listener, async {
                smol::Timer::after(wait).await;
            })
            .await;
        }
    }

    /// Run the session's timers if one is due.
    fn tick(&self, state: &mut State) {
        let now = now_ms();
        if state.session.poll_timeout().is_some_and(|t| t <= now) {
            state.session.handle_timeout(now);
            self.drain(state);
        }
    }

    /// Carry the session's outputs to their side.
    fn drain(&self, state: &mut State) {
        let mut answered = false;
        let mut for_stream = false;
        while let Some(out) = state.session.poll_output() {
            match out {
                BoshOutput::Respond { req, body } => {
                    state.answers.insert(req, body);
                    answered = true;
                }
                BoshOutput::Deliver(bytes) => {
                    state.to_stream.extend(bytes);
                    for_stream = true;
                }
                BoshOutput::End { clean } => {
                    state.ended = Some(clean);
                    for_stream = true;
                    answered = true;
                    if let Some(r) = self.registry.upgrade() {
                        r.remove(&self.sid);
                    }
                }
            }
        }
        if state.session.has_room() {
            if let Some(w) = state.writer.take() {
                w.wake();
            }
        }
        if answered {
            self.answered.notify(usize::MAX);
        }
        if for_stream {
            self.for_stream.notify(usize::MAX);
        }
    }

    /// What the stream wrote that never left, once the session ended
    /// badly.
    pub(crate) fn take_unsent(&self) -> Vec<u8> {
        self.lock().session.take_unsent()
    }

    // ---- the stream's side ----------------------------------------------

    /// Wait for bytes for the stream and hand them to `consume`; 0 at the
    /// end (a session that ended badly reads as a dropped connection).
    pub(crate) async fn read_with(&self, mut consume: impl FnMut(&[u8])) -> io::Result<usize> {
        loop {
            let listener = self.for_stream.listen();
            let deadline: Option<Millis> = {
                let mut state = self.lock();
                self.tick(&mut state);
                if !state.to_stream.is_empty() {
                    let n = state.to_stream.len().min(READ_CHUNK);
                    let chunk: Vec<u8> = state.to_stream.drain(..n).collect();
                    drop(state);
                    consume(&chunk);
                    return Ok(n);
                }
                if state.ended.is_some() {
                    return Ok(0);
                }
                state.session.poll_timeout()
            };
            match deadline {
                Some(d) => {
                    let wait = Duration::from_millis(d.saturating_sub(now_ms()));
                    smol::future::or(listener, async {
                        smol::Timer::after(wait).await;
                    })
                    .await
                }
                None => listener.await,
            }
        }
    }

    /// The stream writes: taken while the session has room.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if state.ended.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if !state.session.has_room() {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.session.push(now_ms(), buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// The stream is done writing for now: its burst goes out.
    pub(crate) fn poll_flush(&self) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        state.session.flush(now_ms());
        self.drain(&mut state);
        Poll::Ready(Ok(()))
    }

    /// The stream ended.
    pub(crate) fn poll_close(&self) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        state.session.stream_closed(now_ms());
        self.drain(&mut state);
        Poll::Ready(Ok(()))
    }
}
