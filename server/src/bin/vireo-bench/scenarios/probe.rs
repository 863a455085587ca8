//! A latency probe: two accounts outside the scenario exchange a chat
//! message every few milliseconds, each side on a thread of its own (so
//! the scenario's many tasks do not delay them), to see whether the
//! scenario's load holds up unrelated routing. Used by `pep --probe`.

use crate::session::Ctx;
use crate::stats::Latencies;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xmpp_core::ns;

/// How often the sender sends.
const EVERY: Duration = Duration::from_millis(5);

/// A running probe.
pub struct Probe {
    /// Ends the receiver.
    stop: Arc<AtomicBool>,
    /// Ends the sender.
    stop_sending: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    /// (sequence number, latency µs) of every message received.
    received: Arc<Mutex<Vec<(usize, u64)>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Probe {
    /// Log `from` and `to` (account indices) in and start sending.
    pub async fn start(ctx: &Ctx, from: usize, to: usize) -> Result<Probe, String> {
        let mut sender = ctx.login_present(from).await?;
        let mut receiver = ctx.login_present(to).await?;
        let to_jid = ctx.bare(to);
        let base = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_sending = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        let (stop_r, received_r) = (stop.clone(), received.clone());
        threads.push(
            std::thread::Builder::new()
                .name("probe-receiver".into())
                .spawn(move || {
                    smol::block_on(async {
                        let mut got = Vec::new();
                        while !stop_r.load(Ordering::Acquire) {
                            let read = async { receiver.recv_batch(&mut got).await.is_ok() };
                            let tick = async {
                                smol::Timer::after(Duration::from_millis(50)).await;
                                true
                            };
                            if !smol::future::or(read, tick).await {
                                return;
                            }
                            let now = u64::try_from(base.elapsed().as_micros()).unwrap_or(0);
                            for el in got.drain(..) {
                                let parsed = el.child_text(ns::CLIENT, "body").and_then(|b| {
                                    let (seq, at) = b.split_once(':')?;
                                    Some((seq.parse::<usize>().ok()?, at.parse::<u64>().ok()?))
                                });
                                if let (Some((seq, at)), Ok(mut r)) = (parsed, received_r.lock()) {
                                    r.push((seq, now.saturating_sub(at)));
                                }
                            }
                        }
                        let _ = receiver.close().await;
                    })
                })
                .map_err(|e| format!("probe thread: {e}"))?,
        );
        let (stop_s, sent_s) = (stop_sending.clone(), sent.clone());
        threads.push(
            std::thread::Builder::new()
                .name("probe-sender".into())
                .spawn(move || {
                    smol::block_on(async {
                        let mut seq = 0usize;
                        while !stop_s.load(Ordering::Acquire) {
                            let at = u64::try_from(base.elapsed().as_micros()).unwrap_or(0);
                            let mut m = Vec::with_capacity(128);
                            m.extend_from_slice(b"<message type='chat' to='");
                            xmpp_core::xml::escape_attr(&to_jid, &mut m);
                            m.extend_from_slice(
                                format!("'><body>{seq}:{at}</body></message>").as_bytes(),
                            );
                            sender.queue_raw(&m);
                            if sender.flush().await.is_err() {
                                return;
                            }
                            seq += 1;
                            sent_s.store(seq, Ordering::Release);
                            smol::Timer::after(EVERY).await;
                        }
                        let _ = sender.close().await;
                    })
                })
                .map_err(|e| format!("probe thread: {e}"))?,
        );
        Ok(Probe {
            stop,
            stop_sending,
            sent,
            received,
            threads,
        })
    }

    /// How many messages were sent so far (a phase boundary).
    pub fn mark(&self) -> usize {
        self.sent.load(Ordering::Acquire)
    }

    /// Stop sending, wait (at most `limit`) for every message, and split
    /// the latencies at `marks`: messages sent before the first mark, between
    /// the first and the second, after it. `Err` when some never arrived.
    pub async fn finish(
        self,
        marks: (usize, usize),
        limit: Duration,
    ) -> Result<[Latencies; 3], String> {
        // Stop sending (the sender thread ends), then wait for the receiver
        // to see everything sent.
        self.stop_sending.store(true, Ordering::Release);
        let mut threads = self.threads;
        let receiver = threads.remove(0);
        for t in threads {
            let _ = t.join();
        }
        let sent = self.sent.load(Ordering::Acquire);
        let t = Instant::now();
        loop {
            let got = self.received.lock().map(|r| r.len()).unwrap_or(0);
            if got >= sent {
                break;
            }
            if t.elapsed() > limit {
                self.stop.store(true, Ordering::Release);
                return Err(format!("probe: {got} of {sent} messages arrived"));
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        self.stop.store(true, Ordering::Release);
        let _ = receiver.join();
        let mut out = [
            Latencies::default(),
            Latencies::default(),
            Latencies::default(),
        ];
        if let Ok(r) = self.received.lock() {
            for &(seq, us) in r.iter() {
                let phase = usize::from(seq >= marks.0) + usize::from(seq >= marks.1);
                out[phase].push_us(us);
            }
        }
        Ok(out)
    }
}
