//! The HTTP machine against requests written out byte by byte.

use super::*;

fn conn() -> HttpConnection {
    HttpConnection::new(HttpLimits::default(), false, 0)
}

/// Everything written and every other output since the last call.
fn drain(c: &mut HttpConnection) -> (String, Vec<HttpOutput>) {
    let mut written = Vec::new();
    let mut other = Vec::new();
    while let Some(o) = c.poll_output() {
        match o {
            HttpOutput::Write(b) => written.extend_from_slice(&b),
            o => other.push(o),
        }
    }
    (String::from_utf8_lossy(&written).into_owned(), other)
}

fn request_of(outputs: &[HttpOutput]) -> &Request {
    match outputs {
        [HttpOutput::Request(r)] => r,
        other => panic!("one request: {other:?}"),
    }
}

#[test]
fn a_get_is_handed_out_and_answered_with_keep_alive() {
    let mut c = conn();
    c.handle_input(
        1,
        b"GET /health?full=1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
    );
    let (written, other) = drain(&mut c);
    assert_eq!(written, "");
    let r = request_of(&other);
    assert_eq!(r.method, "GET");
    assert_eq!(r.target.segments, vec!["health"]);
    assert_eq!(r.target.query.as_deref(), Some("full=1"));
    assert_eq!(r.header("host"), Some("example.org"));
    c.respond(2, &Response::json(200, "{}".into()));
    let (written, other) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 200 OK\r\n"), "{written}");
    assert!(written.ends_with("\r\n\r\n{}"), "{written}");
    assert!(other.is_empty(), "kept alive");
    assert!(!c.is_done());
}

#[test]
fn byte_by_byte_and_pipelined_requests_come_one_at_a_time() {
    let mut c = conn();
    let two = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n";
    for b in two.iter() {
        c.handle_input(1, std::slice::from_ref(b));
    }
    let (_, other) = drain(&mut c);
    let r = request_of(&other);
    assert_eq!(r.body, b"hello");
    c.respond(2, &Response::new(204));
    let (written, other) = drain(&mut c);
    assert!(
        written.starts_with("HTTP/1.1 204 No Content\r\n"),
        "{written}"
    );
    assert!(
        !written.contains("Content-Length"),
        "none on 204: {written}"
    );
    assert_eq!(request_of(&other).target.segments, vec!["b"]);
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    for head in [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
    ] {
        let mut c = conn();
        c.handle_input(1, head.as_bytes());
        drain(&mut c);
        c.respond(2, &Response::text(200, "ok"));
        let (written, other) = drain(&mut c);
        assert!(written.contains("Connection: close\r\n"), "{written}");
        assert_eq!(other, vec![HttpOutput::Close]);
        assert!(c.is_done());
    }
    let mut c = conn();
    c.handle_input(1, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    drain(&mut c);
    c.respond(2, &Response::text(200, "ok"));
    assert!(!c.is_done(), "HTTP/1.0 keep-alive");
}

#[test]
fn head_requests_get_no_body() {
    let mut c = conn();
    c.handle_input(1, b"HEAD /x HTTP/1.1\r\n\r\n");
    drain(&mut c);
    c.respond(2, &Response::text(200, "body"));
    let (written, _) = drain(&mut c);
    assert!(written.contains("Content-Length: 5\r\n"), "{written}");
    assert!(written.ends_with("\r\n\r\n"), "{written}");
}

/// Each refusal: its status, and the connection closed.
#[test]
fn malformed_and_oversized_requests_are_refused_and_closed() {
    let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        (0..70).map(|i| format!("X-{i}: y\r\n")).collect::<String>()
    );
    let cases: Vec<(String, &str)> = vec![
        ("NOT HTTP AT ALL\r\n\r\n".into(), "400"),
        ("GET /api/../admin HTTP/1.1\r\n\r\n".into(), "400"),
        ("GET /api/%2e%2e/x HTTP/1.1\r\n\r\n".into(), "400"),
        ("GET http://evil/ HTTP/1.1\r\n\r\n".into(), "400"),
        (big_head, "431"),
        (many, "431"),
        (
            "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".into(),
            "413",
        ),
        ("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n".into(), "400"),
        (
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".into(),
            "400",
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            "411",
        ),
    ];
    for (input, status) in cases {
        let mut c = conn();
        c.handle_input(1, input.as_bytes());
        let (written, other) = drain(&mut c);
        assert!(
            written.starts_with(&format!("HTTP/1.1 {status} ")),
            "{input:.60}: {written}"
        );
        assert_eq!(other, vec![HttpOutput::Close], "{input:.60}");
        assert!(c.is_done());
    }
}

#[test]
fn a_header_value_that_is_not_utf8_is_refused() {
    let mut c = conn();
    c.handle_input(1, b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n");
    let (written, other) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 400 "), "{written}");
    assert_eq!(other, vec![HttpOutput::Close]);
}

/// A head larger than the budget is refused once the budget is passed,
/// without waiting for (or buffering) the rest.
#[test]
fn an_endless_head_is_refused_at_the_budget() {
    let mut c = conn();
    c.handle_input(1, b"GET / HTTP/1.1\r\n");
    for _ in 0..1000 {
        c.handle_input(1, b"X-Filler: 0123456789\r\n");
        if c.is_done() {
            break;
        }
    }
    let (written, _) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 431 "), "{written}");
}

#[test]
fn a_slow_request_times_out_and_an_idle_connection_closes() {
    let limits = HttpLimits::default();
    let mut c = conn();
    assert_eq!(c.poll_timeout(), Some(limits.idle_timeout_ms));
    c.handle_input(100, b"GET / HT");
    assert_eq!(c.poll_timeout(), Some(100 + limits.request_timeout_ms));
    c.handle_timeout(100 + limits.request_timeout_ms - 1);
    assert!(!c.is_done());
    c.handle_timeout(100 + limits.request_timeout_ms);
    let (written, other) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 408 "), "{written}");
    assert_eq!(other, vec![HttpOutput::Close]);

    let mut idle = conn();
    idle.handle_timeout(limits.idle_timeout_ms);
    let (written, other) = drain(&mut idle);
    assert_eq!(written, "", "an idle connection closes silently");
    assert_eq!(other, vec![HttpOutput::Close]);
}

#[test]
fn an_upgrade_hands_back_what_followed_the_request() {
    let mut c = conn();
    c.handle_input(
        1,
        b"GET /xmpp-websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85",
    );
    let (_, other) = drain(&mut c);
    let r = request_of(&other);
    assert!(r.has_token("connection", "upgrade"));
    let rest = c.upgrade(&Response::new(101).header("Upgrade", "websocket"));
    assert_eq!(rest, b"\x81\x85");
    let (written, _) = drain(&mut c);
    assert!(
        written.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{written}"
    );
    assert!(!written.contains("Content-Length"), "{written}");
    assert!(c.is_done());
}

#[test]
fn draining_closes_idle_connections_and_ends_after_the_request_in_progress() {
    // Kept alive after a request: closed at once.
    let mut idle = conn();
    idle.handle_input(1, b"GET / HTTP/1.1\r\n\r\n");
    drain(&mut idle);
    idle.respond(2, &Response::new(204));
    drain(&mut idle);
    idle.drain(3);
    assert_eq!(drain(&mut idle).1, vec![HttpOutput::Close]);

    // Fresh: a short grace to send its request (a health probe).
    let mut fresh = conn();
    fresh.drain(10);
    assert!(!fresh.is_done());
    assert_eq!(
        fresh.poll_timeout(),
        Some(10 + HttpConnection::DRAIN_GRACE_MS)
    );
    fresh.handle_timeout(10 + HttpConnection::DRAIN_GRACE_MS);
    assert_eq!(drain(&mut fresh).1, vec![HttpOutput::Close]);

    let mut busy = conn();
    busy.handle_input(1, b"GET /health HTTP/1.1\r\n");
    busy.drain(1);
    assert!(!busy.is_done(), "the request in progress is answered");
    busy.handle_input(2, b"\r\n");
    let (_, other) = drain(&mut busy);
    assert_eq!(request_of(&other).target.segments, vec!["health"]);
    busy.respond(3, &Response::text(503, "stopping"));
    let (written, other) = drain(&mut busy);
    assert!(written.contains("Connection: close\r\n"), "{written}");
    assert_eq!(other, vec![HttpOutput::Close]);
}

fn upload_conn() -> HttpConnection {
    let limits = HttpLimits {
        max_body_bytes: 16,
        streamed_prefix: Some("upload"),
        max_streamed_bytes: 1000,
        ..HttpLimits::default()
    };
    HttpConnection::new(limits, false, 0)
}

#[test]
fn upload_bodies_stream_past_the_body_budget_and_the_next_request_follows() {
    let mut c = upload_conn();
    c.handle_input(
        1,
        b"PUT /upload/ab/f.bin HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    let (_, other) = drain(&mut c);
    let [HttpOutput::Request(r), HttpOutput::BodyChunk(first)] = other.as_slice() else {
        panic!("the head, then what came with it: {other:?}");
    };
    assert_eq!((r.streamed, r.body.len()), (100, 0), "never buffered");
    assert_eq!(first, b"0123456789");
    let mut rest = vec![b'x'; 90];
    rest.extend_from_slice(b"GET /health HTTP/1.1\r\n\r\n");
    c.handle_input(2, &rest);
    let (_, other) = drain(&mut c);
    assert!(
        matches!(other.as_slice(), [HttpOutput::BodyChunk(b), HttpOutput::BodyEnd] if b.len() == 90),
        "{other:?}"
    );
    c.respond(3, &Response::text(201, "stored"));
    let (written, other) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 201 "), "{written}");
    assert_eq!(
        request_of(&other).target.segments,
        ["health"],
        "the pipelined request"
    );
}

#[test]
fn an_upload_refused_early_closes_and_a_stalled_one_gets_408() {
    let mut c = upload_conn();
    c.handle_input(
        1,
        b"PUT /upload/ab/f.bin HTTP/1.1\r\nContent-Length: 100\r\n\r\n",
    );
    drain(&mut c);
    c.respond(2, &Response::text(403, "no"));
    let (written, other) = drain(&mut c);
    assert!(
        written.contains("Connection: close"),
        "the rest of the body is never read"
    );
    assert_eq!(other, [HttpOutput::Close]);

    let mut c = upload_conn();
    c.handle_input(
        1,
        b"PUT /upload/ab/f.bin HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc",
    );
    drain(&mut c);
    let deadline = c.poll_timeout().expect("a body has a deadline");
    c.handle_input(deadline - 1, b"def");
    assert!(
        c.poll_timeout().expect("moved") > deadline,
        "progress moves it"
    );
    c.handle_timeout(c.poll_timeout().expect("deadline"));
    let (written, other) = drain(&mut c);
    assert!(written.starts_with("HTTP/1.1 408 "), "{written}");
    assert_eq!(other.last(), Some(&HttpOutput::Close));

    let mut c = upload_conn();
    c.handle_input(
        1,
        b"PUT /upload/ab/f.bin HTTP/1.1\r\nContent-Length: 1001\r\n\r\n",
    );
    let (written, _) = drain(&mut c);
    assert!(
        written.starts_with("HTTP/1.1 413 "),
        "over the streamed budget: {written}"
    );
    let mut c = upload_conn();
    c.handle_input(1, b"PUT /other HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
    let (written, _) = drain(&mut c);
    assert!(
        written.starts_with("HTTP/1.1 413 "),
        "elsewhere the body budget holds: {written}"
    );
}

#[test]
fn a_streamed_response_body_is_the_drivers_and_keep_alive_follows() {
    let mut c = conn();
    c.handle_input(
        1,
        b"GET /upload/ab/f.bin HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
    );
    drain(&mut c);
    c.respond_streamed(
        &Response::new(200).header("Content-Type", "image/png"),
        12345,
    );
    let (written, other) = drain(&mut c);
    assert!(written.contains("Content-Length: 12345\r\n"), "{written}");
    assert!(written.ends_with("\r\n\r\n"), "the head only");
    assert!(
        other.is_empty(),
        "nothing until the body is written: {other:?}"
    );
    c.body_sent(2);
    let (_, other) = drain(&mut c);
    assert_eq!(request_of(&other).target.segments, ["health"]);
}
