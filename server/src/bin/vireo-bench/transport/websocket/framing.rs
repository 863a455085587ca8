//! RFC 7395 framing for xmpp-core's client machine, which speaks the TCP
//! framing of RFC 6120: one XML document, `<stream:stream>` to
//! `</stream:stream>`.
//!
//! Out: [`Splitter`] cuts what the machine writes into top-level items:
//! its stream header becomes `<open/>`, its closing tag `<close/>`, each
//! element its own message, and whitespace keepalives are dropped (RFC 7395
//! §3.3.3 allows nothing between messages; the server keeps the
//! connection alive with WebSocket pings instead). An element without a
//! default namespace declaration gets `xmlns='jabber:client'`, which
//! §3.3.3 asks of every stanza: on TCP it is inherited from the stream
//! header, which a WebSocket message has none of.
//!
//! In: [`translate_incoming`] turns each of the server's messages back into
//! the bytes of a TCP stream: `<open/>` into a stream header, `<close/>`
//! into the closing tag, any other element unchanged (servers declare the
//! `stream:` prefix on `<stream:features/>` and `<stream:error/>`, and a
//! redeclared default namespace is still well-formed XML inside the
//! synthesized header).
//!
//! The machine is never changed: the same SASL, binding, stream
//! management and stanza code runs over both transports, so the two are
//! compared doing the same work.

/// The framing namespace of `<open/>` and `<close/>`.
const FRAMING_NS: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// The stream header the machine's parser is given for a server's
/// `<open/>`: it checks the root's name and namespace and version 1.x.
const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/// The namespace declaration RFC 7395 §3.3.3 wants on every stanza.
const CLIENT_NS: &[u8] = b" xmlns='jabber:client'";

/// One top-level item the machine wrote.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The stream header: send `<open/>`.
    Open,
    /// The closing tag: send `<close/>`.
    Close,
    /// One element, as the message parts to send (the element, or its
    /// start and rest with the `jabber:client` declaration between).
    Element(&'a [u8], &'a [u8], &'a [u8]),
}

/// `<open/>` for `domain` (RFC 7395 §3.4).
pub fn open_message(domain: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + domain.len());
    out.extend_from_slice(b"<open xmlns='");
    out.extend_from_slice(FRAMING_NS.as_bytes());
    out.extend_from_slice(b"' to='");
    xmpp_core::xml::escape_attr(domain, &mut out);
    out.extend_from_slice(b"' version='1.0'/>");
    out
}

/// `<close/>` (RFC 7395 §3.6).
pub fn close_message() -> Vec<u8> {
    format!("<close xmlns='{FRAMING_NS}'/>").into_bytes()
}

/// Cuts the machine's output into top-level items. The machine writes
/// whole items, but a cut item is carried to the next call all the same.
#[derive(Debug, Default)]
pub struct Splitter {
    carry: Vec<u8>,
}

impl Splitter {
    /// Hand every complete item of `bytes` (after what was carried) to
    /// `emit`, in order.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(Piece<'_>)) -> Result<(), String> {
        if self.carry.is_empty() {
            let used = split(bytes, &mut emit)?;
            self.carry.extend_from_slice(&bytes[used..]);
        } else {
            let mut all = std::mem::take(&mut self.carry);
            all.extend_from_slice(bytes);
            let used = split(&all, &mut emit)?;
            all.drain(..used);
            self.carry = all;
        }
        Ok(())
    }
}

/// Emit the complete items at the start of `buf`; how many bytes they
/// (and the whitespace around them) took.
fn split(buf: &[u8], emit: &mut impl FnMut(Piece<'_>)) -> Result<usize, String> {
    let mut at = 0;
    loop {
        while at < buf.len() && buf[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == buf.len() {
            return Ok(at);
        }
        if buf[at] != b'<' {
            return Err(format!(
                "text outside an element in the client's output: {:?}",
                String::from_utf8_lossy(&buf[at..buf.len().min(at + 40)])
            ));
        }
        let Some(item) = item_at(buf, at)? else {
            return Ok(at);
        };
        match item {
            Item::Skip(end) => at = end,
            Item::Open(end) => {
                emit(Piece::Open);
                at = end;
            }
            Item::Close(end) => {
                emit(Piece::Close);
                at = end;
            }
            Item::Element {
                end,
                name_end,
                has_ns,
            } => {
                let el = &buf[at..end];
                if has_ns {
                    emit(Piece::Element(el, &[], &[]));
                } else {
                    let cut = name_end - at;
                    emit(Piece::Element(&el[..cut], CLIENT_NS, &el[cut..]));
                }
                at = end;
            }
        }
    }
}

/// What starts at a `<` at depth 0.
enum Item {
    /// An XML declaration: dropped.
    Skip(usize),
    /// `<stream:stream …>`.
    Open(usize),
    /// `</stream:stream>`.
    Close(usize),
    /// A whole element ending before `end`; its name ends at `name_end`.
    Element {
        end: usize,
        name_end: usize,
        has_ns: bool,
    },
}

/// The item at `buf[at] == b'<'`, `None` when it is not complete yet.
fn item_at(buf: &[u8], at: usize) -> Result<Option<Item>, String> {
    let rest = &buf[at..];
    if rest.starts_with(b"<?") {
        return Ok(find(buf, at, b"?>").map(|e| Item::Skip(e + 2)));
    }
    if rest.starts_with(b"</") {
        let Some(gt) = find(buf, at, b">") else {
            return Ok(None);
        };
        return match buf[at + 2..gt].trim_ascii() {
            b"stream:stream" => Ok(Some(Item::Close(gt + 1))),
            other => Err(format!(
                "unbalanced </{}> in the client's output",
                String::from_utf8_lossy(other)
            )),
        };
    }
    // The root's start tag.
    let Some(tag) = start_tag(buf, at)? else {
        return Ok(None);
    };
    let name = &buf[at + 1..tag.name_end];
    if name == b"stream:stream" {
        return Ok(Some(Item::Open(tag.end)));
    }
    let mut end = tag.end;
    if !tag.empty {
        // Children and text up to the matching end tag.
        let mut depth = 1usize;
        loop {
            let Some(lt) = buf[end..].iter().position(|b| *b == b'<').map(|p| end + p) else {
                return Ok(None);
            };
            let after = &buf[lt..];
            if after.starts_with(b"</") {
                let Some(gt) = find(buf, lt, b">") else {
                    return Ok(None);
                };
                end = gt + 1;
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if after.starts_with(b"<![CDATA[") {
                let Some(e) = find(buf, lt, b"]]>") else {
                    return Ok(None);
                };
                end = e + 3;
            } else if after.starts_with(b"<!--") {
                let Some(e) = find(buf, lt, b"-->") else {
                    return Ok(None);
                };
                end = e + 3;
            } else if after.starts_with(b"<?") {
                let Some(e) = find(buf, lt, b"?>") else {
                    return Ok(None);
                };
                end = e + 2;
            } else {
                let Some(child) = start_tag(buf, lt)? else {
                    return Ok(None);
                };
                end = child.end;
                if !child.empty {
                    depth += 1;
                }
            }
        }
    }
    Ok(Some(Item::Element {
        end,
        name_end: tag.name_end,
        has_ns: tag.has_ns,
    }))
}

/// A start tag's extent.
struct StartTag {
    /// Just past its `>`.
    end: usize,
    /// Just past its name.
    name_end: usize,
    /// `/>`.
    empty: bool,
    /// It declares a default namespace (`xmlns=`).
    has_ns: bool,
}

/// The start tag at `buf[at] == b'<'`, quotes respected; `None` when
/// incomplete.
fn start_tag(buf: &[u8], at: usize) -> Result<Option<StartTag>, String> {
    let mut i = at + 1;
    while i < buf.len() && !buf[i].is_ascii_whitespace() && buf[i] != b'/' && buf[i] != b'>' {
        i += 1;
    }
    let name_end = i;
    if name_end == at + 1 && i < buf.len() {
        return Err("an empty tag name in the client's output".into());
    }
    let mut quote = None;
    let mut has_ns = false;
    while i < buf.len() {
        let b = buf[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'>' => {
                    return Ok(Some(StartTag {
                        end: i + 1,
                        name_end,
                        empty: buf[i - 1] == b'/',
                        has_ns,
                    }))
                }
                b'x' if buf[i - 1].is_ascii_whitespace() => {
                    let attr = &buf[i..];
                    has_ns |= attr.starts_with(b"xmlns=") || attr.starts_with(b"xmlns ");
                }
                _ => {}
            },
        }
        i += 1;
    }
    Ok(None)
}

/// The first `needle` at or after `from`.
fn find(buf: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    buf[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// One message from the server, as bytes of a TCP stream for the
/// machine's parser, appended to `out`.
pub fn translate_incoming(message: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut m = message.trim_ascii_start();
    if m.starts_with(b"<?") {
        if let Some(e) = find(m, 0, b"?>") {
            m = m[e + 2..].trim_ascii_start();
        }
    }
    if is_root(m, b"open") {
        if find(m, 0, FRAMING_NS.as_bytes()).is_none() {
            return Err("<open/> outside the framing namespace".into());
        }
        out.extend_from_slice(HEADER);
    } else if is_root(m, b"close") {
        out.extend_from_slice(b"</stream:stream>");
    } else {
        out.extend_from_slice(message);
    }
    Ok(())
}

/// Whether `m` starts with the element `name` (unprefixed).
fn is_root(m: &[u8], name: &[u8]) -> bool {
    m.len() > name.len() + 1
        && m[0] == b'<'
        && &m[1..=name.len()] == name
        && matches!(
            m[name.len() + 1],
            b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |p| {
                out.push(match p {
                    Piece::Open => "OPEN".to_owned(),
                    Piece::Close => "CLOSE".to_owned(),
                    Piece::Element(a, b, c) => String::from_utf8([a, b, c].concat()).unwrap(),
                })
            })
            .expect("well-formed");
        }
        out
    }

    #[test]
    fn the_machines_output_becomes_messages() {
        let out = pieces(&[
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHUAcHc=</auth>",
            b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq> ",
            b"<message to='a@b' id='x>y'><body>1 > 0 &amp; </body></message><presence/>",
            b"</stream:stream>",
        ]);
        assert_eq!(
            out,
            [
                "OPEN",
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHUAcHc=</auth>",
                "<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
                "<message xmlns='jabber:client' to='a@b' id='x>y'><body>1 > 0 &amp; </body></message>",
                "<presence xmlns='jabber:client'/>",
                "CLOSE",
            ]
        );
    }

    #[test]
    fn an_item_cut_between_writes_is_carried() {
        let whole: &[u8] = b"<r xmlns='urn:xmpp:sm:3'/><message id='1'><body>hi</body></message>";
        for cut in 0..=whole.len() {
            let out = pieces(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(
                out,
                [
                    "<r xmlns='urn:xmpp:sm:3'/>",
                    "<message xmlns='jabber:client' id='1'><body>hi</body></message>"
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn server_messages_become_a_stream() {
        let mut out = Vec::new();
        for m in [
            &b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='1' version='1.0'/>"[..],
            b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
            b"<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />",
        ] {
            translate_incoming(m, &mut out).expect("valid");
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("<stream:stream xmlns='jabber:client'"));
        assert!(text.contains("<stream:features xmlns:stream="));
        assert!(text.ends_with("</stream:stream>"));
        assert!(translate_incoming(b"<open xmlns='jabber:client'/>", &mut Vec::new()).is_err());
    }
}
