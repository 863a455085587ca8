//! Server side of SCRAM (RFC 5802, RFC 7677), with channel binding.

use super::authzid::{authzid_domain, check_authzid};
use super::credentials::{StoredCredentials, MIN_ITERATIONS};
use super::hash::{ct_eq, xor, HashKind};
use super::message::{
    b64_decode, b64_encode, bounded_utf8, check_extensions, decode_saslname, expect_attr,
    is_printable, nonce_from_bytes,
};
use super::{ChannelBinding, ChannelBindingType, Mechanism, SaslFailure};

/// What the server learned from client-first, for the credential lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The authentication identity, saslname-decoded (`=2C` → `,`, `=3D` → `=`).
    /// Not normalized: the caller applies its localpart rules before lookup.
    pub username: String,
    /// The requested authorization identity; already checked to name the same
    /// user (`username` or `username@domain`).
    pub authzid: Option<String>,
}

impl ClientFirst {
    /// The domain of a `username@domain` authzid: the caller must check it is
    /// a domain it serves before accepting the authentication.
    pub fn authzid_domain(&self) -> Option<&str> {
        authzid_domain(self.authzid.as_deref())
    }
}

/// How an unknown user is disguised; see [`ScramServer::with_decoy`].
#[derive(Clone)]
struct Decoy {
    secret: Vec<u8>,
    iterations: u32,
}

/// Everything needed to verify client-final once server-first is out.
struct Pending {
    nonce: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// False for an unknown user: the exchange runs on decoy keys and fails.
    known_user: bool,
}

enum State {
    AwaitServerFirst,
    AwaitClientFinal(Pending),
    Done,
}

/// Server side of one SCRAM exchange.
///
/// Flow: [`start`](Self::start) with client-first → caller looks up
/// credentials for [`ClientFirst::username`] → [`server_first`](Self::server_first)
/// → [`finish`](Self::finish) with client-final. One exchange only: any
/// failure in `finish` ends it.
pub struct ScramServer {
    mech: Mechanism,
    hash: HashKind,
    gs2_header: String,
    /// Binding data of the type the client chose (empty without `p=`).
    cb_data: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    username: String,
    decoy: Option<Decoy>,
    server_first: Option<String>,
    state: State,
}

impl std::fmt::Debug for ScramServer {
    // Hand-written so keys never end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("mech", &self.mech)
            .field("username", &self.username)
            .field("gs2_header", &self.gs2_header)
            .finish_non_exhaustive()
    }
}

/// Parsed GS2 header flag.
enum CbFlag<'a> {
    /// `n`: client does not support channel binding.
    No,
    /// `y`: client supports it but thinks the server does not.
    ClientOnly,
    /// `p=<name>`: client uses this binding type.
    Uses(&'a str),
}

impl ScramServer {
    /// `offered`: channel bindings the TLS layer can provide for this
    /// connection (empty when not on TLS or unavailable).
    /// `plus_advertised`: whether the server advertised any -PLUS mechanism (a
    /// client sending gs2 flag 'y' while the server advertised PLUS is a
    /// downgrade attack → NotAuthorized).
    pub fn start(
        mech: Mechanism,
        client_first: &[u8],
        offered: &[ChannelBinding],
        plus_advertised: bool,
    ) -> Result<(ScramServer, ClientFirst), SaslFailure> {
        let hash = mech.hash().ok_or(SaslFailure::InvalidMechanism)?;
        let msg = bounded_utf8(client_first)?;

        // gs2-header = gs2-cbind-flag "," [authzid] ","
        let mut it = msg.splitn(3, ',');
        let flag = it.next().unwrap_or_default();
        let authz = it.next().ok_or(SaslFailure::MalformedRequest)?;
        let bare = it.next().ok_or(SaslFailure::MalformedRequest)?;
        let gs2_len = flag.len() + authz.len() + 2;
        let gs2_header = msg.get(..gs2_len).ok_or(SaslFailure::MalformedRequest)?;

        let flag = match flag {
            "n" => CbFlag::No,
            "y" => CbFlag::ClientOnly,
            f => match f.strip_prefix("p=") {
                Some(name) if !name.is_empty() => CbFlag::Uses(name),
                _ => return Err(SaslFailure::MalformedRequest),
            },
        };
        let authzid = if authz.is_empty() {
            None
        } else {
            let v = authz
                .strip_prefix("a=")
                .ok_or(SaslFailure::MalformedRequest)?;
            Some(decode_saslname(v).map_err(|_| SaslFailure::InvalidAuthzid)?)
        };

        let cb_data = match (flag, mech.is_plus()) {
            (CbFlag::Uses(name), true) => {
                // Only a type the TLS layer can vouch for; anything else would
                // let the client skip the binding check.
                let kind = ChannelBindingType::from_name(name).ok_or(SaslFailure::NotAuthorized)?;
                let cb = offered
                    .iter()
                    .find(|cb| cb.kind == kind)
                    .ok_or(SaslFailure::NotAuthorized)?;
                cb.data.clone()
            }
            // -PLUS mechanisms require p=, and p= requires a -PLUS mechanism.
            (CbFlag::Uses(_), false) | (_, true) => return Err(SaslFailure::MalformedRequest),
            // The client could bind but believes we cannot, yet we advertised
            // PLUS: someone stripped it from our feature list (RFC 5802 §6).
            (CbFlag::ClientOnly, false) if plus_advertised => {
                return Err(SaslFailure::NotAuthorized)
            }
            (CbFlag::ClientOnly | CbFlag::No, false) => Vec::new(),
        };

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        let mut parts = bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            // Mandatory extensions: we support none.
            return Err(SaslFailure::MalformedRequest);
        }
        let username = decode_saslname(expect_attr(first, b'n')?)?;
        let client_nonce = expect_attr(parts.next(), b'r')?;
        if !is_printable(client_nonce) {
            return Err(SaslFailure::MalformedRequest);
        }
        check_extensions(parts)?;
        check_authzid(authzid.as_deref(), &username)?;

        let server = ScramServer {
            mech,
            hash,
            gs2_header: gs2_header.to_owned(),
            cb_data,
            client_first_bare: bare.to_owned(),
            client_nonce: client_nonce.to_owned(),
            username: username.clone(),
            decoy: None,
            server_first: None,
            state: State::AwaitServerFirst,
        };
        Ok((server, ClientFirst { username, authzid }))
    }

    /// Makes unknown users indistinguishable across attempts: without this
    /// the decoy salt is derived from the nonce (the brief's minimum), so it
    /// changes per attempt while a real user's salt does not. With a
    /// server-wide `secret`, the decoy salt is `HMAC(secret, username)` —
    /// stable and unpredictable — and `iterations` should equal what real
    /// accounts use.
    pub fn with_decoy(mut self, secret: &[u8], iterations: u32) -> Self {
        self.decoy = Some(Decoy {
            secret: secret.to_vec(),
            iterations: iterations.max(MIN_ITERATIONS),
        });
        self
    }

    /// After the caller looked up credentials (None = unknown user: continue
    /// with deterministic fake salt derived from the nonce so the exchange
    /// looks normal, and fail with NotAuthorized at the end — no user
    /// enumeration). `nonce` are fresh random bytes (≥ 18) from the caller;
    /// they are base64-encoded to be printable.
    ///
    /// Calling it again returns the same message unchanged.
    pub fn server_first(&mut self, creds: Option<&StoredCredentials>, nonce: &[u8]) -> Vec<u8> {
        let server_nonce = nonce_from_bytes(nonce);
        self.server_first_with_nonce(creds, &server_nonce, nonce)
    }

    /// Core of [`server_first`](Self::server_first) with the printable server
    /// nonce given directly (tests feed RFC vectors through it).
    fn server_first_with_nonce(
        &mut self,
        creds: Option<&StoredCredentials>,
        server_nonce: &str,
        seed: &[u8],
    ) -> Vec<u8> {
        if let Some(sf) = &self.server_first {
            return sf.clone().into_bytes();
        }
        let nonce = format!("{}{}", self.client_nonce, server_nonce);
        let (salt, iterations, stored_key, server_key, known_user) = match creds {
            // An imported account without keys for this hash: its real salt
            // and count, decoy keys, and the failure of a wrong password.
            Some(c) if !c.has(self.hash) => {
                let h = self.hash;
                let stored_key = h.hmac(&c.salt, b"vireo decoy stored key");
                let server_key = h.hmac(&c.salt, b"vireo decoy server key");
                (c.salt.clone(), c.iterations, stored_key, server_key, false)
            }
            Some(c) => {
                let keys = c.keys(self.hash);
                (
                    c.salt.clone(),
                    c.iterations,
                    keys.stored_key.clone(),
                    keys.server_key.clone(),
                    true,
                )
            }
            None => {
                let (salt, iterations) = self.decoy_salt(seed);
                // Keys nobody can match; finish fails regardless, but it
                // still does the same work as for a real user.
                let h = self.hash;
                let stored_key = h.hmac(&salt, b"vireo decoy stored key");
                let server_key = h.hmac(&salt, b"vireo decoy server key");
                (salt, iterations, stored_key, server_key, false)
            }
        };
        let sf = format!("r={nonce},s={},i={iterations}", b64_encode(&salt));
        self.server_first = Some(sf.clone());
        self.state = State::AwaitClientFinal(Pending {
            nonce,
            stored_key,
            server_key,
            known_user,
        });
        sf.into_bytes()
    }

    /// Deterministic fake salt for an unknown user (16 bytes, like real ones).
    fn decoy_salt(&self, seed: &[u8]) -> (Vec<u8>, u32) {
        let h = HashKind::Sha256;
        match &self.decoy {
            Some(d) => {
                let mut mac = h.hmac(&d.secret, self.username.as_bytes());
                mac.truncate(16);
                (mac, d.iterations)
            }
            None => {
                let mut data = b"vireo decoy salt".to_vec();
                data.extend_from_slice(seed);
                let mut salt = h.h(&data);
                salt.truncate(16);
                (salt, MIN_ITERATIONS)
            }
        }
    }

    /// Verify client-final (nonce, channel binding data equals what the TLS
    /// layer offered for the chosen type, proof); returns the server-final
    /// message `v=...`.
    pub fn finish(&mut self, client_final: &[u8]) -> Result<Vec<u8>, SaslFailure> {
        let pending = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitClientFinal(p) => p,
            other => {
                // Out of order: keep waiting for server_first if that's where
                // we were, but never accept a second client-final.
                if matches!(other, State::AwaitServerFirst) {
                    self.state = other;
                }
                return Err(SaslFailure::MalformedRequest);
            }
        };
        let msg = bounded_utf8(client_final)?;

        // client-final-message = c=.. "," r=.. ["," extensions] "," p=..
        let idx = msg.rfind(",p=").ok_or(SaslFailure::MalformedRequest)?;
        let without_proof = &msg[..idx];
        let proof_b64 = &msg[idx + 3..];
        if proof_b64.contains(',') {
            return Err(SaslFailure::MalformedRequest);
        }
        let mut parts = without_proof.split(',');
        let cb_b64 = expect_attr(parts.next(), b'c')?;
        let nonce = expect_attr(parts.next(), b'r')?;
        check_extensions(parts)?;
        let cb = b64_decode(cb_b64)?;
        let proof = b64_decode(proof_b64)?;
        if proof.len() != self.hash.output_len() {
            return Err(SaslFailure::MalformedRequest);
        }

        // The client echoes the GS2 header plus the binding data it saw on its
        // side of TLS; any difference means a different TLS channel (MITM).
        let mut expected_cb = self.gs2_header.as_bytes().to_vec();
        expected_cb.extend_from_slice(&self.cb_data);
        let cb_ok = ct_eq(&cb, &expected_cb);
        let nonce_ok = nonce == pending.nonce;

        let server_first = self.server_first.as_deref().unwrap_or_default();
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, server_first, without_proof
        );
        let h = self.hash;
        let client_signature = h.hmac(&pending.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        let proof_ok = ct_eq(&h.h(&client_key), &pending.stored_key);

        if !(cb_ok & nonce_ok & proof_ok & pending.known_user) {
            return Err(SaslFailure::NotAuthorized);
        }
        let server_signature = h.hmac(&pending.server_key, auth_message.as_bytes());
        Ok(format!("v={}", b64_encode(&server_signature)).into_bytes())
    }

    /// The mechanism this exchange runs.
    pub fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// The (saslname-decoded) username from client-first.
    pub fn username(&self) -> &str {
        &self.username
    }
}

#[cfg(test)]
impl ScramServer {
    /// Test hook: server-first with a literal server nonce (RFC vectors).
    pub(crate) fn server_first_with_nonce_str(
        &mut self,
        creds: Option<&StoredCredentials>,
        server_nonce: &str,
    ) -> Vec<u8> {
        self.server_first_with_nonce(creds, server_nonce, server_nonce.as_bytes())
    }
}
