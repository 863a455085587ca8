//! The local admin socket: lets `vireo adduser/passwd/deluser` act on a
//! running server (the store, redb or sled, admits one process at a time),
//! with effect at once.
//!
//! Protocol, one request per connection, UTF-8 lines:
//! `COMMAND\tJID\n` then, for `adduser` and `passwd`, `PASSWORD\n`; the
//! answer is `ok\n` or `error\tMESSAGE\n`. The socket is owner-only (0600).
//!
//! `reload\n` (no JID) re-reads the configuration through the hook the
//! embedder installed ([`crate::ServerHandle::set_reload_hook`]); the answer
//! is `ok\tREPORT\n` or `error\tMESSAGE`, where a reload's MESSAGE may span
//! several lines (a configuration error with its source excerpt): the server
//! closes the connection after the answer, so the client reads to the end.

use crate::accounts::{account_jid, add_user, delete_user, set_password, AccountError};
use crate::kdf_pool::KdfPool;
use crate::reload::ReloadHookSlot;
use crate::router::{HubMsg, Router};
use crate::settings::SettingsCell;
use crate::storage::Backend;
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::unix::{UnixListener, UnixStream};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

/// What the admin socket acts on.
pub(crate) struct Admin {
    pub(crate) backend: Arc<dyn Backend>,
    /// The hosted domains: accounts are made only in these.
    pub(crate) domains: Vec<String>,
    /// For the SCRAM iteration count in force.
    pub(crate) settings: Arc<SettingsCell>,
    /// Where new passwords are derived.
    pub(crate) kdf: Arc<KdfPool>,
    /// To end a deleted account's sessions.
    pub(crate) router: Arc<Router>,
    pub(crate) reload_hook: Arc<ReloadHookSlot>,
}

/// Bind the admin socket, replacing a stale one but never a live one.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another server is running with this data directory",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let std_listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    UnixListener::try_from(std_listener)
}

/// Answer requests until the executor stops.
pub(crate) async fn serve(
    ex: Arc<smol::Executor<'static>>,
    listener: UnixListener,
    admin: Arc<Admin>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let admin = admin.clone();
                ex.spawn(async move {
                    if let Err(e) = handle(stream, &admin).await {
                        tracing::warn!(error = %e, "admin request failed");
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn read_line(r: &mut BufReader<UnixStream>) -> io::Result<String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).await?;
    if n == 0 || line.len() > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The `reload` command: run the embedder's hook on a blocking thread (it
/// reads files). The answer keeps the message's line breaks.
async fn serve_reload(stream: UnixStream, admin: &Admin) -> io::Result<()> {
    let answer = match admin.reload_hook.get() {
        None => "error\tthis server does not support reloading its configuration\n".to_owned(),
        Some(hook) => match smol::unblock(move || hook()).await {
            Ok(report) => format!("ok\t{}\n", report.replace('\n', " ")),
            Err(message) => format!("error\t{}\n", message.trim_end()),
        },
    };
    let mut w = stream;
    w.write_all(answer.as_bytes()).await?;
    w.flush().await
}

async fn handle(stream: UnixStream, admin: &Admin) -> io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let request = read_line(&mut reader).await?;
    let (command, jid) = request.split_once('\t').unwrap_or((request.as_str(), ""));
    if command == "reload" {
        return serve_reload(stream, admin).await;
    }
    if command == "snapshot" {
        let dest = std::path::PathBuf::from(jid);
        let backend = admin.backend.clone();
        let r = smol::unblock(move || backend.snapshot(&dest)).await;
        let answer = match r {
            Ok(()) => "ok\n".to_owned(),
            Err(e) => format!("error\t{}\n", e.to_string().replace('\n', " ")),
        };
        let mut w = stream;
        w.write_all(answer.as_bytes()).await?;
        return w.flush().await;
    }
    let command = command.to_owned();
    let result = match account_jid(jid, &admin.domains) {
        Err(e) => Err(e),
        Ok(jid) => match command.as_str() {
            "adduser" | "passwd" => {
                let password = read_line(&mut reader).await?;
                let backend = admin.backend.clone();
                let iterations = admin.settings.current().scram_iterations;
                let adding = command == "adduser";
                admin
                    .kdf
                    .run(move || {
                        if adding {
                            add_user(backend.as_ref(), &jid, &password, iterations)
                        } else {
                            set_password(backend.as_ref(), &jid, &password, iterations)
                        }
                    })
                    .await
            }
            "deluser" => {
                let backend = admin.backend.clone();
                let j = jid.clone();
                let r = smol::unblock(move || delete_user(backend.as_ref(), &j)).await;
                if r.is_ok() {
                    let account = jid.bare_str();
                    let p = admin.router.partition(&account);
                    admin.router.send(p, HubMsg::Kick(account));
                }
                r
            }
            other => Err(AccountError::Storage(format!("unknown command {other}"))),
        },
    };
    let answer = match result {
        Ok(()) => "ok\n".to_owned(),
        Err(e) => format!("error\t{}\n", e.to_string().replace('\n', " ")),
    };
    let mut w = stream;
    w.write_all(answer.as_bytes()).await?;
    w.flush().await
}

/// Send one request to a running server. `Ok(None)`: no server is listening
/// on this socket, so the caller should open the store itself.
pub fn request(
    socket: &Path,
    command: &str,
    jid: &str,
    password: Option<&str>,
) -> io::Result<Option<Result<(), String>>> {
    use std::io::{BufRead, Write};
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut msg = format!("{command}\t{jid}\n");
    if let Some(p) = password {
        msg.push_str(p);
        msg.push('\n');
    }
    stream.write_all(msg.as_bytes())?;
    let mut line = String::new();
    io::BufReader::new(stream).read_line(&mut line)?;
    let line = line.trim_end();
    if line == "ok" {
        Ok(Some(Ok(())))
    } else {
        let message = line.strip_prefix("error\t").unwrap_or(line);
        Ok(Some(Err(message.to_owned())))
    }
}

/// Longest answer [`reload`] reads.
const MAX_ANSWER: u64 = 1024 * 1024;

/// Ask a running server to reload its configuration. `Ok(None)`: no server
/// is listening on this socket. Otherwise the server's report, or its error
/// message (possibly several lines); the server then runs on unchanged.
///
/// See also [`snapshot`].
pub fn reload(socket: &Path) -> io::Result<Option<Result<String, String>>> {
    use std::io::{Read, Write};
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    stream.write_all(b"reload\n")?;
    let mut answer = String::new();
    stream.take(MAX_ANSWER).read_to_string(&mut answer)?;
    let answer = answer.trim_end();
    if let Some(report) = answer.strip_prefix("ok\t") {
        Ok(Some(Ok(report.to_owned())))
    } else if answer == "ok" {
        Ok(Some(Ok(String::new())))
    } else if let Some(message) = answer.strip_prefix("error\t") {
        Ok(Some(Err(message.to_owned())))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer from the server: {answer:?}"),
        ))
    }
}

/// Ask a running server to write a consistent copy of its store to `dest`
/// (which must not exist). `Ok(None)`: no server listens on this socket.
pub fn snapshot(socket: &Path, dest: &Path) -> io::Result<Option<Result<(), String>>> {
    match request(socket, "snapshot", &dest.to_string_lossy(), None)? {
        None => Ok(None),
        Some(r) => Ok(Some(r)),
    }
}
