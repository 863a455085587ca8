//! Arbitrary bytes into the HTTP/1.1 connection machine, fed in chunks
//! whose sizes the first byte seeds; every request is answered (a body
//! echoing its path, or an upgrade for `/xmpp-websocket`), and time runs
//! past every deadline at the end. The machine must never panic, never
//! hand out a request whose target is not a clean absolute path, and
//! always come to rest.

use xmpp_core::http::{HttpConnection, HttpLimits, HttpOutput, Response};

/// Outputs one input may cause at most: more means the machine loops.
const MAX_OUTPUTS: usize = 100_000;

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limits = HttpLimits {
        max_head_bytes: 2048,
        max_body_bytes: 4096,
        streamed_prefix: Some("upload"),
        max_streamed_bytes: 65_536,
        ..HttpLimits::default()
    };
    let mut conn = HttpConnection::new(limits, first & 0x40 != 0, 0);
    let mut now = 0;
    // Refuse streamed bodies at once (bit 5) or take them to the end.
    let mut st = Streamed {
        refuse: first & 0x20 != 0,
        left: None,
    };
    for chunk in super::chunks(first, rest) {
        now += 10;
        conn.handle_input(now, chunk);
        if drain(&mut conn, now, &mut st) {
            return;
        }
    }
    conn.handle_timeout(now + 3_600_000);
    drain(&mut conn, now + 3_600_000, &mut st);
}

/// A streamed body being received.
struct Streamed {
    refuse: bool,
    /// Bytes announced and not yet received.
    left: Option<usize>,
}

/// Perform outputs; true once the connection is done.
fn drain(conn: &mut HttpConnection, now: u64, st: &mut Streamed) -> bool {
    let mut n = 0;
    while let Some(out) = conn.poll_output() {
        n += 1;
        assert!(
            n < MAX_OUTPUTS,
            "the HTTP machine produces outputs without end"
        );
        match out {
            HttpOutput::Write(_) => {}
            HttpOutput::BodyChunk(chunk) => {
                let left = st
                    .left
                    .as_mut()
                    .expect("a chunk belongs to a streamed request");
                assert!(chunk.len() <= *left, "more body than announced");
                *left -= chunk.len();
            }
            HttpOutput::BodyEnd => {
                assert_eq!(st.left.take(), Some(0), "the body ends when it is complete");
                conn.respond(now, &Response::text(201, "stored"));
            }
            HttpOutput::Request(request)
                if request.method == "PUT"
                    && request
                        .target
                        .segments
                        .first()
                        .is_some_and(|s| s == "upload") =>
            {
                assert!(request.body.is_empty(), "a streamed body is never buffered");
                st.left = Some(request.streamed);
                if st.refuse {
                    // Chunks already queued still come; nothing after.
                    conn.respond(now, &Response::text(403, "no"));
                }
            }
            HttpOutput::Request(request) => {
                let path = request.target.path();
                assert!(path.starts_with('/'), "{path}");
                assert!(!path.contains("//") && !path.contains("/../"), "{path}");
                assert!(
                    request
                        .target
                        .segments
                        .iter()
                        .all(|s| s != "." && s != ".." && !s.contains('/')),
                    "{:?}",
                    request.target.segments
                );
                if request.target.segments == ["xmpp-websocket"] {
                    conn.upgrade(&Response::new(101));
                } else {
                    conn.respond(now, &Response::text(200, &path));
                }
            }
            HttpOutput::Close => return true,
        }
    }
    conn.is_done()
}
