//! Environment variables: the last layer, overriding every file.

use super::diagnostics::Diagnostic;
use super::merge::{not_available, State};
use super::schema;
use super::{EnvFn, Origin};

/// Each variable and the key it sets.
pub const VARIABLES: &[(&str, &str)] = &[
    ("VIREO_DOMAIN", "domains"),
    ("VIREO_ENVIRONMENT", "environment"),
    ("VIREO_DATA_PATH", "data_path"),
    ("VIREO_ADMINS", "admins"),
    ("VIREO_LOG", "log_level"),
    ("VIREO_BIND", "transport.bind"),
    ("VIREO_C2S_PORT", "transport.c2s_port"),
    ("VIREO_C2S_TLS_PORT", "transport.c2s_tls_port"),
    ("VIREO_C2S_REQUIRE_ENCRYPTION", "stream.require_encryption"),
    ("VIREO_HTTP_PORT", "interfaces.http_port"),
    ("VIREO_HTTPS_PORT", "interfaces.https_port"),
    ("VIREO_S2S_PORT", "transport.s2s_port"),
    ("VIREO_S2S_TLS_PORT", "transport.s2s_tls_port"),
    ("VIREO_S2S_OVERRIDES", "transport.s2s_routes"),
    ("VIREO_TURN_SECRET", "extdisco.turn_external_secret"),
    ("VIREO_DB_DRIVER", "storage.driver"),
    ("VIREO_DB_NAME", "storage.sql_name"),
    ("VIREO_DB_USER", "storage.sql_user"),
    ("VIREO_DB_PASSWORD", "storage.sql_password"),
    ("VIREO_DB_HOST", "storage.sql_host"),
    ("VIREO_DB_PORT", "storage.sql_port"),
    ("VIREO_DB_TLS", "storage.sql_tls"),
    ("VIREO_DB_TLS_CA", "storage.sql_tls_ca"),
];

/// Apply every set, non-empty variable.
pub fn apply(state: &mut State, env: EnvFn<'_>) {
    for (var, key) in VARIABLES {
        let Some(text) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let Some(spec) = schema::find(key) else {
            continue;
        };
        let origin = Origin::Env(var);
        if !spec.available {
            state.error(not_available(spec, origin));
            continue;
        }
        match spec.ty.parse_text(&text) {
            Ok(v) => state.store(spec, v, origin),
            Err(e) => {
                let mut d = Diagnostic::error(origin, format!("{key}: {e}"));
                if *key == "storage.driver" {
                    d = d.with_fix(
                        "the stores are \"redb\" (embedded, the default), \"sled\" (its predecessor) and \"postgresql\"",
                    );
                } else if spec.ty == schema::Ty::Routes {
                    d = d.with_fix(format!(
                        "{var} must be comma-separated domain=host:port items, e.g. \"b.example=10.0.0.5:5269,c.example=10.0.0.6:5269\""
                    ));
                } else {
                    d = d.with_fix(format!(
                        "{var} must be {}",
                        spec.ty
                            .describe()
                            .replace("an array of", "a comma-separated list of")
                    ));
                }
                state.error(d);
            }
        }
    }
}
