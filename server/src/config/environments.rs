//! The environments: a built-in profile (which applies even without the
//! file), the `environments/<name>.toml` overlay, and the rules an
//! environment enforces after everything else (production requires
//! encryption).

use super::diagnostics::Diagnostic;
use super::merge::State;
use super::schema::{self, Value, ENVIRONMENTS};
use super::Origin;

/// The `'static` name of an environment.
pub fn name(env: &str) -> Option<&'static str> {
    ENVIRONMENTS.iter().copied().find(|e| *e == env)
}

/// The built-in part of an environment: applied before its file.
pub fn apply_profile(state: &mut State, env: &'static str) {
    let set = |state: &mut State, key: &str, v: Value| {
        if let Some(spec) = schema::find(key) {
            state.store(spec, v, Origin::Profile(env));
        }
    };
    match env {
        "production" => {
            set(state, "stream.require_encryption", Value::Bool(true));
            set(state, "log_format", Value::Str("json".into()));
            set(state, "transport.c2s_rate_limit", Value::Int(65_536));
        }
        "development" => {
            set(state, "log_level", Value::Str("debug".into()));
            // Test accounts without `vireo adduser` (XEP-0077).
            set(state, "registration.allow_registration", Value::Bool(true));
        }
        "docker" => set(state, "transport.bind", Value::Str("0.0.0.0".into())),
        _ => {}
    }
}

/// Rules that hold whatever the files and policies say.
pub fn enforce(state: &mut State, env: &'static str) {
    if env != "production" {
        return;
    }
    let Some((Value::Bool(false), origin)) = state.values.get("stream.require_encryption").cloned()
    else {
        return;
    };
    match origin {
        Origin::Env(var) => state.error(
            Diagnostic::warning(
                Origin::Env(var),
                "UNENCRYPTED client connections allowed in the production environment \
                 (stream.require_encryption = false)",
            )
            .with_fix(format!("unset {var} unless this is a loopback benchmark")),
        ),
        other => {
            state.error(
                Diagnostic::warning(
                    other,
                    "stream.require_encryption = false is overridden: the production environment requires encryption",
                )
                .with_fix("remove the setting, or set VIREO_C2S_REQUIRE_ENCRYPTION=false to allow plaintext explicitly"),
            );
            state.values.insert(
                "stream.require_encryption",
                (
                    Value::Bool(true),
                    Origin::Forced("the production environment requires encryption"),
                ),
            );
        }
    }
}
