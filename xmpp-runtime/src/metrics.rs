//! What `/metrics` reports (issue 14), in the Prometheus/OpenMetrics text
//! format (`prometheus-client`): counters the tasks bump as they work (an
//! atomic add per stanza), and gauges read when scraped (connections,
//! s2s links, the process's memory, CPU, file descriptors and threads).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a stanza counter: where it came from and its kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StanzaLabels {
    /// `c2s` or `s2s`.
    pub(crate) source: &'static str,
    /// `message`, `presence` or `iq`.
    pub(crate) kind: &'static str,
}

/// Labels of an authentication counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AuthLabels {
    /// The SASL mechanism (`SCRAM-SHA-256`, `PLAIN`, ...), or `unknown`.
    pub(crate) mechanism: String,
    /// `success` or `failure`.
    pub(crate) outcome: &'static str,
}

/// Labels of a per-transport gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

/// The server's counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    stanzas_received: Family<StanzaLabels, Counter>,
    /// SASL outcomes by mechanism (a few per session: a lock is fine).
    auth: Family<AuthLabels, Counter>,
    /// How long the store takes per call or batch (a group commit), s.
    storage_seconds: Histogram,
    /// The family's counters, looked up once: counting a stanza is one
    /// atomic add, not a lock and a hash lookup.
    c2s: [Counter; 3],
    s2s: [Counter; 3],
}

/// The stanza kinds counted, in the order of `Metrics::c2s`/`s2s`.
const KINDS: [&str; 3] = ["message", "presence", "iq"];

impl Default for Metrics {
    fn default() -> Self {
        let stanzas_received = Family::<StanzaLabels, Counter>::default();
        let counters = |source: &'static str| {
            KINDS.map(|kind| {
                stanzas_received
                    .get_or_create(&StanzaLabels { source, kind })
                    .clone()
            })
        };
        let (c2s, s2s) = (counters("c2s"), counters("s2s"));
        Metrics {
            stanzas_received,
            auth: Family::default(),
            // 100 µs to ~26 s by factors of 4.
            storage_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            c2s,
            s2s,
        }
    }
}

/// Gauges read at scrape time, by whoever serves `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) connections: i64,
    pub(crate) s2s_outgoing: i64,
    pub(crate) s2s_bidi: i64,
    pub(crate) bosh_sessions: i64,
    /// Bound client sessions by transport: tcp, websocket, bosh.
    pub(crate) sessions: [i64; 3],
    /// Sessions waiting to be resumed (XEP-0198).
    pub(crate) hibernated: i64,
    /// Bytes of stanzas waiting in the hub partitions' queues.
    pub(crate) queued_bytes: i64,
    /// Offline messages and archive entries, when the store can say.
    pub(crate) stored: Option<crate::storage::StoreSizes>,
    pub(crate) uptime_s: i64,
}

/// The transports of `Snapshot::sessions`, in order.
pub(crate) const TRANSPORTS: [&str; 3] = ["tcp", "websocket", "bosh"];

impl Metrics {
    /// A stanza arrived from a client (`c2s`) or a server (`s2s`).
    pub(crate) fn stanza_received(&self, source: &'static str, name: &str) {
        let Some(i) = KINDS.iter().position(|k| *k == name) else {
            return;
        };
        let counters = if source == "s2s" {
            &self.s2s
        } else {
            &self.c2s
        };
        counters[i].inc();
    }

    /// A SASL exchange ended (`outcome` success or failure).
    pub(crate) fn auth(&self, mechanism: Option<&str>, outcome: &'static str) {
        let labels = AuthLabels {
            mechanism: mechanism.unwrap_or("unknown").to_owned(),
            outcome,
        };
        self.auth.get_or_create(&labels).inc();
    }

    /// A store call took `seconds`.
    pub(crate) fn storage_took(&self, seconds: f64) {
        self.storage_seconds.observe(seconds);
    }

    /// The text of a scrape.
    pub(crate) fn render(&self, snapshot: Snapshot) -> String {
        let mut registry = Registry::with_prefix("vireo");
        registry.register(
            "stanzas_received",
            "Stanzas received from clients and servers, by kind",
            self.stanzas_received.clone(),
        );
        registry.register(
            "auth_attempts",
            "SASL authentications by mechanism and outcome",
            self.auth.clone(),
        );
        registry.register(
            "storage_call_seconds",
            "Time of one store call or group-committed batch",
            self.storage_seconds.clone(),
        );
        let sessions = Family::<TransportLabels, Gauge>::default();
        for (transport, n) in TRANSPORTS.iter().zip(snapshot.sessions) {
            sessions
                .get_or_create(&TransportLabels { transport })
                .set(n);
        }
        registry.register("sessions", "Bound client sessions by transport", sessions);
        let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
            let g: Gauge = Gauge::default();
            g.set(value);
            registry.register(name, help, g);
        };
        gauge(
            &mut registry,
            "connections",
            "Open connections of every kind (c2s, s2s, HTTP, components)",
            snapshot.connections,
        );
        gauge(
            &mut registry,
            "s2s_outgoing_links",
            "Outgoing s2s links (domain pairs)",
            snapshot.s2s_outgoing,
        );
        gauge(
            &mut registry,
            "s2s_bidi_streams",
            "Incoming s2s streams carrying our stanzas back (XEP-0288)",
            snapshot.s2s_bidi,
        );
        gauge(
            &mut registry,
            "hibernated_sessions",
            "Sessions waiting without a transport to be resumed (XEP-0198)",
            snapshot.hibernated,
        );
        gauge(
            &mut registry,
            "hub_queued_bytes",
            "Bytes of stanzas waiting in the hub partitions' queues",
            snapshot.queued_bytes,
        );
        if let Some(stored) = snapshot.stored {
            gauge(
                &mut registry,
                "offline_messages",
                "Messages in offline storage (XEP-0160), all accounts",
                stored.offline as i64,
            );
            gauge(
                &mut registry,
                "archive_entries",
                "Entries of the message archives (XEP-0313), all archives",
                stored.archived as i64,
            );
        }
        gauge(
            &mut registry,
            "bosh_sessions",
            "Live BOSH sessions (XEP-0206)",
            snapshot.bosh_sessions,
        );
        gauge(
            &mut registry,
            "uptime_seconds",
            "Seconds since the server started",
            snapshot.uptime_s,
        );
        let process = Process::read();
        gauge(
            &mut registry,
            "process_resident_memory_bytes",
            "Resident memory (VmRSS)",
            process.rss_bytes,
        );
        gauge(
            &mut registry,
            "process_cpu_milliseconds",
            "CPU time used, user and system",
            process.cpu_ms,
        );
        gauge(
            &mut registry,
            "process_open_fds",
            "Open file descriptors",
            process.open_fds,
        );
        gauge(&mut registry, "process_threads", "Threads", process.threads);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// This process, from `/proc/self` (zeros where it cannot be read).
#[derive(Debug, Default)]
struct Process {
    rss_bytes: i64,
    cpu_ms: i64,
    open_fds: i64,
    threads: i64,
}

impl Process {
    fn read() -> Process {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> i64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Process {
            rss_bytes: field("VmRSS:").saturating_mul(1024),
            cpu_ms: cpu_ms(),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64),
            threads: field("Threads:"),
        }
    }
}

/// User and system CPU time of this process, in milliseconds.
fn cpu_ms() -> i64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces) end at its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as i64;
    (ticks(11) + ticks(12)).saturating_mul(1000) / per_sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_counts_stanzas_and_reads_the_process() {
        let m = Metrics::default();
        m.stanza_received("c2s", "message");
        m.stanza_received("c2s", "message");
        m.stanza_received("s2s", "iq");
        m.stanza_received("c2s", "stream:error");
        let text = m.render(Snapshot {
            connections: 3,
            ..Snapshot::default()
        });
        assert!(
            text.contains("vireo_stanzas_received_total{source=\"c2s\",kind=\"message\"} 2"),
            "{text}"
        );
        assert!(text.contains("vireo_stanzas_received_total{source=\"s2s\",kind=\"iq\"} 1"));
        assert!(!text.contains("stream:error"));
        assert!(text.contains("vireo_connections 3"), "{text}");
        assert!(text.contains("vireo_process_threads "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
