//! `vireo adduser|passwd|deluser JID`: through the admin socket when the
//! server runs (effect at once), else directly on the store.

use crate::config::Config;
use crate::password::read_new_password;
use std::sync::Arc;
use xmpp_runtime::accounts::{account_jid, add_user, delete_user, set_password};
use xmpp_runtime::storage::Backend;

/// Which account operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Passwd,
    Delete,
}

impl Op {
    fn command(self) -> &'static str {
        match self {
            Op::Add => "adduser",
            Op::Passwd => "passwd",
            Op::Delete => "deluser",
        }
    }
}

/// Run the operation; the error text is printed for the operator.
pub fn run(cfg: &Config, op: Op, jid: &str) -> Result<String, String> {
    let jid = account_jid(jid, &cfg.domains).map_err(|e| e.to_string())?;
    let password = match op {
        Op::Delete => None,
        _ => Some(read_new_password("Password: ").map_err(|e| e.to_string())?),
    };
    let done = match op {
        Op::Add => format!("created {jid}"),
        Op::Passwd => format!("changed the password of {jid}"),
        Op::Delete => format!("deleted {jid}"),
    };
    match xmpp_runtime::admin::request(
        &cfg.admin_socket(),
        op.command(),
        &jid.to_string(),
        password.as_deref(),
    ) {
        Ok(Some(result)) => return result.map(|()| done),
        Ok(None) => {}
        Err(e) => {
            return Err(format!(
                "admin socket {}: {e}",
                cfg.admin_socket().display()
            ))
        }
    }
    let backend: Arc<dyn Backend> = crate::store::open_store(cfg)?;
    let result = match (op, password) {
        (Op::Add, Some(p)) => add_user(backend.as_ref(), &jid, &p, cfg.scram_iterations),
        (Op::Passwd, Some(p)) => set_password(backend.as_ref(), &jid, &p, cfg.scram_iterations),
        _ => delete_user(backend.as_ref(), &jid),
    };
    backend.flush().map_err(|e| e.to_string())?;
    result.map_err(|e| e.to_string())?;
    if op == Op::Delete {
        // The running server's store hook does this; offline, here.
        let upload = crate::config::sections::upload::http(cfg, Vec::new());
        if let Some(upload) = upload.filter(|u| u.dir.is_dir()) {
            if let Ok(store) =
                xmpp_runtime::upload_store::UploadStore::open(&upload.dir, upload.retention_ms)
            {
                let removed = store.delete_owner(&jid.bare_str());
                if removed > 0 {
                    return Ok(format!("{done} and its {removed} uploaded file(s)"));
                }
            }
        }
    }
    Ok(done)
}
