//! Client side of SCRAM (RFC 5802, RFC 7677), with channel binding.

use super::credentials::{prepare_password, MIN_ITERATIONS};
use super::hash::{ct_eq, xor, HashKind};
use super::message::{
    attr, b64_decode, b64_encode, bounded_utf8, check_extensions, encode_saslname, expect_attr,
    is_printable, nonce_from_bytes,
};
use super::{ChannelBinding, Mechanism, SaslFailure};

/// Upper bound on the iteration count a server may demand: beyond this a
/// hostile server just burns our CPU.
pub const MAX_CLIENT_ITERATIONS: u32 = 10_000_000;

enum State {
    AwaitServerFirst,
    AwaitServerFinal { server_signature: Vec<u8> },
    Failed,
}

/// Client side of one SCRAM exchange.
pub struct ScramClient {
    hash: HashKind,
    /// OpaqueString-prepared password.
    password: String,
    gs2_header: String,
    cb_data: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    // Hand-written so the password never ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("gs2_header", &self.gs2_header)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// `binding`: Some → use -PLUS with gs2 'p=<type>'; None with
    /// `client_supports_plus == false` → 'n'; None while the client supports
    /// binding but the server offered no PLUS → 'y' (lets the server detect a
    /// stripped PLUS offer). `nonce`: fresh random bytes (≥ 18), base64-encoded
    /// into the message.
    ///
    /// Fails with `InvalidMechanism` for PLAIN or when `binding` and the
    /// mechanism's `-PLUS`-ness disagree, and `MalformedRequest` for an
    /// empty/NUL-containing username, empty nonce or unpreparable password.
    pub fn new(
        mech: Mechanism,
        username: &str,
        password: &str,
        nonce: &[u8],
        binding: Option<ChannelBinding>,
        client_supports_plus: bool,
    ) -> Result<(ScramClient, Vec<u8>), SaslFailure> {
        Self::new_with_nonce(
            mech,
            username,
            password,
            &nonce_from_bytes(nonce),
            binding,
            client_supports_plus,
        )
    }

    /// [`new`](Self::new) with an already printable nonce (tests use RFC vectors).
    fn new_with_nonce(
        mech: Mechanism,
        username: &str,
        password: &str,
        client_nonce: &str,
        binding: Option<ChannelBinding>,
        client_supports_plus: bool,
    ) -> Result<(ScramClient, Vec<u8>), SaslFailure> {
        let hash = mech.hash().ok_or(SaslFailure::InvalidMechanism)?;
        if mech.is_plus() != binding.is_some() {
            return Err(SaslFailure::InvalidMechanism);
        }
        if username.is_empty() || username.contains('\0') || !is_printable(client_nonce) {
            return Err(SaslFailure::MalformedRequest);
        }
        let password = prepare_password(password)?.into_owned();
        let (gs2_header, cb_data) = match binding {
            Some(cb) => (format!("p={},,", cb.kind.name()), cb.data),
            None if client_supports_plus => ("y,,".to_owned(), Vec::new()),
            None => ("n,,".to_owned(), Vec::new()),
        };
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(username));
        let msg = format!("{gs2_header}{client_first_bare}").into_bytes();
        let client = ScramClient {
            hash,
            password,
            gs2_header,
            cb_data,
            client_first_bare,
            client_nonce: client_nonce.to_owned(),
            state: State::AwaitServerFirst,
        };
        Ok((client, msg))
    }

    /// Checks server-first (nonce extends ours, salt, `i ≥ 4096`), runs
    /// PBKDF2 and returns client-final with the proof.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslFailure> {
        if !matches!(self.state, State::AwaitServerFirst) {
            return Err(SaslFailure::MalformedRequest);
        }
        // Any failure below ends the exchange.
        self.state = State::Failed;
        let msg = bounded_utf8(msg)?;

        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
        let mut parts = msg.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(SaslFailure::MalformedRequest);
        }
        let nonce = expect_attr(first, b'r')?;
        let salt = b64_decode(expect_attr(parts.next(), b's')?)?;
        let iterations = expect_attr(parts.next(), b'i')?;
        check_extensions(parts)?;

        if !is_printable(nonce) {
            return Err(SaslFailure::MalformedRequest);
        }
        // The server must extend our nonce, not replace or merely echo it.
        if nonce.len() <= self.client_nonce.len() || !nonce.starts_with(&self.client_nonce) {
            return Err(SaslFailure::NotAuthorized);
        }
        if salt.is_empty() {
            return Err(SaslFailure::MalformedRequest);
        }
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SaslFailure::MalformedRequest);
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| SaslFailure::MalformedRequest)?;
        if iterations < MIN_ITERATIONS {
            return Err(SaslFailure::MechanismTooWeak);
        }
        if iterations > MAX_CLIENT_ITERATIONS {
            return Err(SaslFailure::MalformedRequest);
        }

        let h = self.hash;
        let mut cb = self.gs2_header.as_bytes().to_vec();
        cb.extend_from_slice(&self.cb_data);
        let without_proof = format!("c={},r={nonce}", b64_encode(&cb));
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);

        let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
        let (client_key, stored_key, server_key) = h.keys(&salted);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_signature = h.hmac(&server_key, auth_message.as_bytes());

        self.state = State::AwaitServerFinal { server_signature };
        Ok(format!("{without_proof},p={}", b64_encode(&proof)).into_bytes())
    }

    /// Checks the server's signature (`v=`), which proves the server knew our
    /// credentials; `e=` or a wrong signature → `NotAuthorized`.
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslFailure> {
        let State::AwaitServerFinal { server_signature } = &self.state else {
            return Err(SaslFailure::MalformedRequest);
        };
        let msg = bounded_utf8(msg)?;
        let mut parts = msg.split(',');
        let first = parts.next().unwrap_or_default();
        let verifier = match attr(first) {
            Some((b'e', _)) => return Err(SaslFailure::NotAuthorized),
            Some((b'v', v)) => v,
            _ => return Err(SaslFailure::MalformedRequest),
        };
        check_extensions(parts)?;
        let verifier = b64_decode(verifier)?;
        if ct_eq(&verifier, server_signature) {
            Ok(())
        } else {
            Err(SaslFailure::NotAuthorized)
        }
    }
}

#[cfg(test)]
impl ScramClient {
    /// Test hook: client with a literal nonce (RFC vectors).
    pub(crate) fn new_with_nonce_str(
        mech: Mechanism,
        username: &str,
        password: &str,
        client_nonce: &str,
    ) -> Result<(ScramClient, Vec<u8>), SaslFailure> {
        Self::new_with_nonce(mech, username, password, client_nonce, None, false)
    }
}
