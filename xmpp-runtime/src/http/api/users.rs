//! `/api/users`: list, create, change a password, delete (which ends the
//! account's sessions, as `vireo deluser` does).

use super::{body, json, Answer, Api, ApiError};
use crate::accounts::{account_jid, add_user, delete_user, set_password, AccountError};
use crate::router::HubMsg;
use serde::{Deserialize, Serialize};
use xmpp_core::http::{Request, Response};

fn refused(e: AccountError) -> ApiError {
    let status = match e {
        AccountError::BadJid { .. } | AccountError::BadPassword(_) => 400,
        AccountError::UnknownDomain(..) => 422,
        AccountError::Exists(_) => 409,
        AccountError::NotFound(_) => 404,
        AccountError::Storage(_) => 500,
    };
    ApiError::new(status, e.to_string())
}

pub(super) async fn list(api: &Api, request: &Request) -> Answer {
    #[derive(Serialize)]
    struct Users {
        users: Vec<String>,
    }
    // `?domain=example.org` narrows the list.
    let domain = request
        .target
        .query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("domain=")))
        .map(str::to_owned);
    let backend = api.backend.clone();
    let mut users = smol::unblock(move || backend.accounts())
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    if let Some(d) = domain {
        users.retain(|u| u.rsplit('@').next() == Some(d.as_str()));
    }
    users.sort();
    Ok(json(200, &Users { users }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    jid: String,
    password: String,
}

pub(super) async fn create(api: &Api, request: &Request) -> Answer {
    let new: NewUser = body(request)?;
    let jid = account_jid(&new.jid, &api.domains).map_err(refused)?;
    let backend = api.backend.clone();
    let iterations = api.settings.current().scram_iterations;
    let account = jid.clone();
    api.kdf
        .run(move || add_user(backend.as_ref(), &account, &new.password, iterations))
        .await
        .map_err(refused)?;
    #[derive(Serialize)]
    struct Created {
        jid: String,
    }
    Ok(json(
        201,
        &Created {
            jid: jid.bare_str(),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

pub(super) async fn password(api: &Api, jid: &str, request: &Request) -> Answer {
    let change: NewPassword = body(request)?;
    let jid = account_jid(jid, &api.domains).map_err(refused)?;
    let backend = api.backend.clone();
    let iterations = api.settings.current().scram_iterations;
    api.kdf
        .run(move || set_password(backend.as_ref(), &jid, &change.password, iterations))
        .await
        .map_err(refused)?;
    Ok(Response::new(204))
}

pub(super) async fn delete(api: &Api, jid: &str) -> Answer {
    let jid = account_jid(jid, &api.domains).map_err(refused)?;
    let backend = api.backend.clone();
    let account = jid.clone();
    smol::unblock(move || delete_user(backend.as_ref(), &account))
        .await
        .map_err(refused)?;
    let bare = jid.bare_str();
    let p = api.router.partition(&bare);
    api.router.send(p, HubMsg::Kick(bare));
    Ok(Response::new(204))
}
