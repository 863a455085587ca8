//! `/upload/<slot>/<name>` (XEP-0363): `PUT` stores the file a slot
//! granted, streamed to disk chunk by chunk (the HTTP machine never
//! buffers it: `HttpLimits::streamed_prefix`); `GET` and `HEAD` serve it,
//! with single byte ranges, as an attachment unless it is a type that is
//! safe to show (images, audio, video, plain text), never sniffed, never
//! able to run script (the default deny-all CSP).

use crate::clock::now_ms;
use crate::config::UploadHttpConfig;
use crate::upload_store::{PutError, PutFile, UploadStore};
use std::path::PathBuf;
use xmpp_core::http::{Request, Response};
use xmpp_core::modules::upload::{percent_encode, Slot, TokenError};

/// An upload in progress: the file, and whether it failed already.
pub(super) struct Put {
    file: Option<PutFile>,
}

/// Check a `PUT` against its token and start the file; the refusal
/// otherwise (the connection closes after it: the body is not read).
pub(super) async fn begin(
    cfg: &UploadHttpConfig,
    store: &std::sync::Arc<UploadStore>,
    request: &Request,
) -> Result<Put, Response> {
    let [_, id, name] = request.target.segments.as_slice() else {
        return Err(Response::text(404, "not found"));
    };
    let token = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Response::text(401, "an upload needs its slot's Authorization header"))?;
    let slot = match Slot::verify(&cfg.secret, token.trim(), now_ms()) {
        Ok(s) => s,
        Err(TokenError::Expired) => return Err(Response::text(410, "upload slot expired")),
        Err(TokenError::Invalid) => return Err(Response::text(403, "not a valid upload slot")),
    };
    if slot.id != *id || slot.filename != *name {
        return Err(Response::text(403, "the slot is for another file"));
    }
    if request.streamed as u64 != slot.size {
        return Err(Response::text(
            400,
            "Content-Length differs from the slot's size",
        ));
    }
    if let (Some(granted), Some(sent)) = (&slot.content_type, request.header("content-type")) {
        if !granted.eq_ignore_ascii_case(sent.trim()) {
            return Err(Response::text(400, "Content-Type differs from the slot's"));
        }
    }
    let store = store.clone();
    let now = now_ms();
    match smol::unblock(move || store.begin(&slot, now)).await {
        Ok(file) => Ok(Put { file: Some(file) }),
        Err(PutError::Exists) => Err(Response::text(409, "this slot holds a file already")),
        Err(PutError::Io(e)) => {
            tracing::error!(error = %e, "upload: cannot create the file");
            Err(Response::text(500, "cannot store the file"))
        }
    }
}

impl Put {
    /// The next chunk of the body.
    pub(super) async fn write(&mut self, chunk: Vec<u8>) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        let (file, written) = smol::unblock(move || {
            let r = file.write(&chunk);
            (file, r)
        })
        .await;
        match written {
            Ok(()) => self.file = Some(file),
            Err(e) => {
                tracing::error!(error = %e, "upload: write failed");
                file.abandon();
            }
        }
    }

    /// The body is complete: 201, or why not.
    pub(super) async fn finish(mut self) -> Response {
        let Some(file) = self.file.take() else {
            return Response::text(500, "cannot store the file");
        };
        match smol::unblock(move || file.finish()).await {
            Ok(()) => Response::text(201, "stored"),
            Err(e) => {
                tracing::error!(error = %e, "upload: cannot complete the file");
                Response::text(500, "cannot store the file")
            }
        }
    }
}

impl Drop for Put {
    /// A connection that ends mid-upload leaves no file behind.
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            file.abandon();
        }
    }
}

/// What a `GET` or `HEAD` is answered with: a response, or a head whose
/// body is `length` bytes of `path` from `offset`.
pub(super) enum Download {
    Respond(Response),
    File {
        head: Response,
        path: PathBuf,
        offset: u64,
        length: u64,
    },
}

/// Types a browser may show inline: they cannot carry script.
const INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "video/mp4",
    "video/webm",
    "text/plain",
];

/// Answer a `GET`/`HEAD` of `/upload/<slot>/<name>`.
pub(super) async fn download(store: &std::sync::Arc<UploadStore>, request: &Request) -> Download {
    let [_, id, name] = request.target.segments.as_slice() else {
        return Download::Respond(Response::text(404, "not found"));
    };
    let (store, wanted) = (store.clone(), id.clone());
    let found = smol::unblock(move || store.get(&wanted, now_ms())).await;
    let Some((meta, path)) = found.filter(|(m, _)| m.filename == *name) else {
        return Download::Respond(Response::text(404, "not found"));
    };
    let declared = meta
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let main = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let inline = INLINE.contains(&main.as_str());
    let content_type = if inline {
        declared.to_owned()
    } else {
        "application/octet-stream".to_owned()
    };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encode(&meta.filename)
    );
    let base = |status: u16| {
        Response::new(status)
            .header("Content-Type", content_type.clone())
            .header("Content-Disposition", disposition.clone())
            .header("Accept-Ranges", "bytes")
            .header("Cache-Control", "private, max-age=86400")
            .header("Access-Control-Allow-Origin", "*")
    };
    let size = meta.size;
    match request.header("range").map(|r| byte_range(r, size)) {
        None | Some(Range::Ignored) => Download::File {
            head: base(200),
            path,
            offset: 0,
            length: size,
        },
        Some(Range::Unsatisfiable) => Download::Respond(
            Response::text(416, "range not satisfiable")
                .header("Content-Range", format!("bytes */{size}")),
        ),
        Some(Range::Bytes(first, last)) => Download::File {
            head: base(206).header("Content-Range", format!("bytes {first}-{last}/{size}")),
            path,
            offset: first,
            length: last - first + 1,
        },
    }
}

/// A `Range` header for a file of `size` bytes (RFC 9110 §14).
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    Unsatisfiable,
    /// Not one byte range (several, or another unit): the whole file.
    Ignored,
}

fn byte_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Ignored;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => b.parse::<u64>().ok().map(|n| {
            if n == 0 {
                (1, 0)
            } else {
                (size.saturating_sub(n), size.saturating_sub(1))
            }
        }),
        (false, true) => a.parse::<u64>().ok().map(|f| (f, size.saturating_sub(1))),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(f), Ok(l)) if f <= l => Some((f, l.min(size.saturating_sub(1)))),
            _ => return Range::Ignored,
        },
        (true, true) => None,
    };
    match parsed {
        Some((f, l)) if size > 0 && f < size && f <= l => Range::Bytes(f, l),
        Some(_) => Range::Unsatisfiable,
        None => Range::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(byte_range("bytes=90-", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(byte_range("bytes=50-500", 100), Range::Bytes(50, 99));
        assert_eq!(byte_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Range::Ignored);
        assert_eq!(byte_range("items=0-1", 100), Range::Ignored);
        assert_eq!(byte_range("bytes=9-1", 100), Range::Ignored);
    }
}
