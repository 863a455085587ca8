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

/// A SCRAM client's derived keys for one (password, salt, iteration count)
/// and hash function: what RFC 5802 §5.1 lets a client cache so that later
/// logins skip PBKDF2 (`Hi()`), the only expensive step on the client side.
///
/// Obtained from [`ScramClient::keys`] after an exchange and handed to a
/// later one with [`ScramClient::with_cached_keys`]. They are used only when
/// the server's salt, iteration count and hash match; otherwise the client
/// derives fresh keys from the password. The keys are password-equivalent
/// for this server (they authenticate as the account): keep them as secret
/// as the password, and drop them when the password changes (stale keys for
/// an unchanged salt make the server refuse the login).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramClientKeys {
    /// The SCRAM family the keys belong to: [`Mechanism::ScramSha1`] or
    /// [`Mechanism::ScramSha256`] (the `-PLUS` variants use the same keys).
    pub mechanism: Mechanism,
    /// The salt the server sent.
    pub salt: Vec<u8>,
    /// The iteration count the server sent.
    pub iterations: u32,
    /// `HMAC(SaltedPassword, "Client Key")`.
    pub client_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramClientKeys {
    // Hand-written so the (password-equivalent) keys never end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClientKeys")
            .field("mechanism", &self.mechanism)
            .field("salt", &b64_encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramClientKeys {
    /// Whether these keys answer a server-first with `salt` and
    /// `iterations` for `hash` (and have the hash's length).
    fn fit(&self, hash: HashKind, salt: &[u8], iterations: u32) -> bool {
        self.mechanism.hash() == Some(hash)
            && self.iterations == iterations
            && self.salt == salt
            && self.client_key.len() == hash.output_len()
            && self.server_key.len() == hash.output_len()
    }
}

/// The non-`-PLUS` mechanism of a hash function.
fn family(hash: HashKind) -> Mechanism {
    match hash {
        HashKind::Sha1 => Mechanism::ScramSha1,
        HashKind::Sha256 => Mechanism::ScramSha256,
    }
}

enum State {
    AwaitServerFirst,
    AwaitServerFinal {
        server_signature: Vec<u8>,
        keys: ScramClientKeys,
    },
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
    /// Keys from an earlier exchange, used if the server-first fits them.
    cached: Option<ScramClientKeys>,
    /// The server-first fitted `cached`: PBKDF2 was skipped.
    used_cached: bool,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    // Hand-written so the password never ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("gs2_header", &self.gs2_header)
            .field("client_first_bare", &self.client_first_bare)
            .field("cached_keys", &self.cached.is_some())
            .field("used_cached_keys", &self.used_cached)
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
            cached: None,
            used_cached: false,
            state: State::AwaitServerFirst,
        };
        Ok((client, msg))
    }

    /// Offer keys cached from an earlier exchange (RFC 5802 §5.1): if the
    /// server-first's salt and iteration count (and this mechanism's hash)
    /// match them, [`handle_server_first`](Self::handle_server_first) uses
    /// them instead of running PBKDF2 on the password; otherwise it derives
    /// keys as usual. Call before `handle_server_first`.
    pub fn with_cached_keys(mut self, keys: ScramClientKeys) -> Self {
        self.cached = Some(keys);
        self
    }

    /// The keys this exchange used, once the server-first was handled, for
    /// caching with [`with_cached_keys`](Self::with_cached_keys). Only cache
    /// them after [`verify_server_final`](Self::verify_server_final)
    /// succeeded: before that nothing shows they match the server's record.
    pub fn keys(&self) -> Option<&ScramClientKeys> {
        match &self.state {
            State::AwaitServerFinal { keys, .. } => Some(keys),
            _ => None,
        }
    }

    /// Whether the server-first matched the keys from
    /// [`with_cached_keys`](Self::with_cached_keys), so PBKDF2 was skipped.
    pub fn used_cached_keys(&self) -> bool {
        self.used_cached
    }

    /// Checks server-first (nonce extends ours, salt, `i ≥ 4096`), runs
    /// PBKDF2 (unless cached keys fit) and returns client-final with the proof.
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

        let keys = match self.cached.take() {
            Some(k) if k.fit(h, &salt, iterations) => {
                self.used_cached = true;
                k
            }
            _ => {
                let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
                let (client_key, _, server_key) = h.keys(&salted);
                ScramClientKeys {
                    mechanism: family(h),
                    salt,
                    iterations,
                    client_key,
                    server_key,
                }
            }
        };
        let stored_key = h.h(&keys.client_key);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&keys.client_key, &client_signature);
        let server_signature = h.hmac(&keys.server_key, auth_message.as_bytes());

        self.state = State::AwaitServerFinal {
            server_signature,
            keys,
        };
        Ok(format!("{without_proof},p={}", b64_encode(&proof)).into_bytes())
    }

    /// Checks the server's signature (`v=`), which proves the server knew our
    /// credentials; `e=` or a wrong signature → `NotAuthorized`.
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslFailure> {
        let State::AwaitServerFinal {
            server_signature, ..
        } = &self.state
        else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{ScramServer, StoredCredentials};

    const CNONCE: &[u8] = b"client-nonce-bytes-0123456";
    const SNONCE: &[u8] = b"server-nonce-bytes-0123456";

    /// One exchange against a server holding `creds`: (client-final, the
    /// client after it, whether the server accepted the proof).
    fn exchange(
        mech: Mechanism,
        password: &str,
        creds: &StoredCredentials,
        cached: Option<ScramClientKeys>,
    ) -> (Vec<u8>, ScramClient, bool) {
        let (client, cf) = ScramClient::new(mech, "u", password, CNONCE, None, false).expect("c");
        let mut client = match cached {
            Some(k) => client.with_cached_keys(k),
            None => client,
        };
        assert!(client.keys().is_none());
        let (mut server, _) = ScramServer::start(mech, &cf, &[], false).expect("s");
        let sf = server.server_first(Some(creds), SNONCE);
        let cfin = client.handle_server_first(&sf).expect("client final");
        let accepted = match server.finish(&cfin) {
            Ok(sfin) => {
                assert_eq!(client.verify_server_final(&sfin), Ok(()));
                true
            }
            Err(_) => false,
        };
        (cfin, client, accepted)
    }

    #[test]
    fn cached_keys_give_the_same_client_final() {
        for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("d");
            let (cold, client, ok) = exchange(mech, "pw", &creds, None);
            assert!(ok);
            assert!(!client.used_cached_keys());
            let keys = client.keys().expect("keys").clone();
            assert_eq!(keys.mechanism, mech);
            assert_eq!(keys.salt, b"0123456789abcdef");
            assert_eq!(keys.iterations, 4096);

            let (warm, client, ok) = exchange(mech, "pw", &creds, Some(keys.clone()));
            assert!(ok);
            assert!(client.used_cached_keys());
            assert_eq!(warm, cold);
            assert_eq!(client.keys(), Some(&keys));

            // The password is not consulted when the keys fit.
            let (warm, client, ok) = exchange(mech, "other", &creds, Some(keys));
            assert!(ok && client.used_cached_keys());
            assert_eq!(warm, cold);
        }
    }

    #[test]
    fn plus_variant_uses_the_same_keys() {
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("d");
        let (_, client, _) = exchange(Mechanism::ScramSha256, "pw", &creds, None);
        let keys = client.keys().expect("keys").clone();
        let cb = ChannelBinding::new(super::super::ChannelBindingType::TlsExporter, b"x");
        let (client, _) = ScramClient::new(
            Mechanism::ScramSha256Plus,
            "u",
            "pw",
            CNONCE,
            Some(cb),
            true,
        )
        .expect("c");
        let mut client = client.with_cached_keys(keys);
        let mut sf = b"r=".to_vec();
        sf.extend_from_slice(nonce_from_bytes(CNONCE).as_bytes());
        sf.extend_from_slice(b"xyz,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096");
        client.handle_server_first(&sf).expect("client final");
        assert!(client.used_cached_keys());
    }

    #[test]
    fn mismatched_keys_fall_back_to_the_password() {
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("d");
        let (reference, client, _) = exchange(Mechanism::ScramSha256, "pw", &creds, None);
        let keys = client.keys().expect("keys").clone();

        let mut other_salt = keys.clone();
        other_salt.salt = b"another salt".to_vec();
        let mut other_iterations = keys.clone();
        other_iterations.iterations = 8192;
        let mut other_hash = keys.clone();
        other_hash.mechanism = Mechanism::ScramSha1;
        let mut truncated = keys.clone();
        truncated.client_key.pop();
        for stale in [other_salt, other_iterations, other_hash, truncated] {
            let (cfin, client, ok) = exchange(Mechanism::ScramSha256, "pw", &creds, Some(stale));
            assert!(ok);
            assert!(!client.used_cached_keys());
            assert_eq!(cfin, reference);
            assert_eq!(client.keys(), Some(&keys));
        }

        // The server's record changed salt: the fresh keys carry it.
        let moved = StoredCredentials::derive("pw", b"fresh-salt-0000", 4096).expect("d");
        let (_, client, ok) = exchange(Mechanism::ScramSha256, "pw", &moved, Some(keys.clone()));
        assert!(ok);
        assert!(!client.used_cached_keys());
        let fresh = client.keys().expect("keys");
        assert_eq!(fresh.salt, b"fresh-salt-0000");
        assert_ne!(fresh.client_key, keys.client_key);
    }

    #[test]
    fn debug_hides_the_keys() {
        let creds = StoredCredentials::derive("pw", b"0123456789abcdef", 4096).expect("d");
        let (_, client, _) = exchange(Mechanism::ScramSha1, "pw", &creds, None);
        let keys = client.keys().expect("keys");
        let shown = format!("{keys:?}");
        assert!(!shown.contains(&b64_encode(&keys.client_key)));
        assert!(!shown.contains(&format!("{:?}", keys.client_key)));
    }
}
