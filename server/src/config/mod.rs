//! Configuration: built-in defaults, then an optional TOML file, then
//! environment variables. Every effective value remembers its [`Origin`].
//!
//! With no file at all, `vireo run` serves `localhost` from `./vireo-data`
//! with a generated certificate: the embedded default.

mod file;
mod origin;

pub use origin::Origin;

use file::FileConfig;
use origin::line_of;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;
use xmpp_core::jid::Jid;
use xmpp_core::sasl::Mechanism;

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type (the message has line and column).
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or malformed.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: Origin,
        key: &'static str,
        message: String,
    },
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub domains: Vec<String>,
    pub data_path: PathBuf,
    pub log_level: String,
    pub bind: IpAddr,
    pub c2s_port: u16,
    pub c2s_tls_port: u16,
    pub max_connections: usize,
    pub threads: usize,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub require_encryption: bool,
    pub auth_timeout_secs: u64,
    pub keepalive_secs: u64,
    pub max_stanza_size: usize,
    pub scram_iterations: u32,
    pub mechanisms: Vec<Mechanism>,
    /// Where each key's value came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: vec!["localhost".into()],
            data_path: PathBuf::from("vireo-data"),
            log_level: "info".into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            c2s_port: 5222,
            c2s_tls_port: 5223,
            max_connections: 20_000,
            threads: 0,
            certificate: None,
            key: None,
            require_encryption: true,
            auth_timeout_secs: 30,
            keepalive_secs: 60,
            max_stanza_size: 256 * 1024,
            scram_iterations: 10_000,
            mechanisms: Mechanism::SERVER_PREFERENCE.to_vec(),
            origins: BTreeMap::new(),
        }
    }
}

/// An environment lookup, injectable so tests need not touch the process env.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Load: defaults, the file (if given, or `VIREO_CONFIG_PATH`), then the
    /// environment.
    pub fn load(path: Option<&Path>, env: EnvFn<'_>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| env("VIREO_CONFIG_PATH").map(PathBuf::from));
        if let Some(p) = path {
            let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            cfg.apply_file(&p, &text)?;
        }
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The origin of a key ("default" when never set).
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let mut set = Setter {
            path,
            text,
            origins: &mut self.origins,
        };
        if let Some(v) = set.get("domain", file.domain) {
            self.domains = vec![v];
        }
        if let Some(v) = set.get("domains", file.domains) {
            self.domains = v;
        }
        if let Some(v) = set.get("data_path", file.data_path) {
            self.data_path = v.into();
        }
        if let Some(v) = set.get("log_level", file.log_level) {
            self.log_level = v;
        }
        let t = file.transport;
        if let Some(v) = set.get("transport.bind", t.bind) {
            self.bind = parse_ip(&v, set.origin("transport.bind"), "transport.bind")?;
        }
        if let Some(v) = set.get("transport.c2s_port", t.c2s_port) {
            self.c2s_port = v;
        }
        if let Some(v) = set.get("transport.c2s_tls_port", t.c2s_tls_port) {
            self.c2s_tls_port = v;
        }
        if let Some(v) = set.get("transport.max_connections", t.max_connections) {
            self.max_connections = v;
        }
        if let Some(v) = set.get("transport.threads", t.threads) {
            self.threads = v;
        }
        if let Some(v) = set.get("tls.certificate", file.tls.certificate) {
            self.certificate = Some(relative_to(path, &v));
        }
        if let Some(v) = set.get("tls.key", file.tls.key) {
            self.key = Some(relative_to(path, &v));
        }
        let s = file.stream;
        if let Some(v) = set.get("stream.require_encryption", s.require_encryption) {
            self.require_encryption = v;
        }
        if let Some(v) = set.get("stream.auth_timeout", s.auth_timeout) {
            self.auth_timeout_secs = v;
        }
        if let Some(v) = set.get("stream.keepalive_interval", s.keepalive_interval) {
            self.keepalive_secs = v;
        }
        if let Some(v) = set.get("stream.max_stanza_size", s.max_stanza_size) {
            self.max_stanza_size = v;
        }
        if let Some(v) = set.get("stream.scram_iterations", s.scram_iterations) {
            self.scram_iterations = v;
        }
        if let Some(v) = set.get("stream.mechanisms", s.mechanisms) {
            let origin = set.origin("stream.mechanisms");
            self.mechanisms = v
                .iter()
                .map(|m| {
                    Mechanism::from_name(m).ok_or_else(|| ConfigError::Invalid {
                        origin: origin.clone(),
                        key: "stream.mechanisms",
                        message: format!(
                            "unknown SASL mechanism {m:?} (known: {})",
                            Mechanism::SERVER_PREFERENCE
                                .iter()
                                .map(|m| m.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    fn apply_env(&mut self, env: EnvFn<'_>) -> Result<(), ConfigError> {
        let mut var = |name: &'static str, key: &'static str| {
            env(name).filter(|v| !v.is_empty()).inspect(|_| {
                self.origins.insert(key, Origin::Env(name));
            })
        };
        let domain = var("VIREO_DOMAIN", "domains");
        let data = var("VIREO_DATA_PATH", "data_path");
        let bind = var("VIREO_BIND", "transport.bind");
        let port = var("VIREO_C2S_PORT", "transport.c2s_port");
        let tls_port = var("VIREO_C2S_TLS_PORT", "transport.c2s_tls_port");
        let encryption = var("VIREO_C2S_REQUIRE_ENCRYPTION", "stream.require_encryption");
        let log = var("VIREO_LOG", "log_level");
        if let Some(d) = domain {
            self.domains = d.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if let Some(d) = data {
            self.data_path = d.into();
        }
        if let Some(l) = log {
            self.log_level = l;
        }
        let env_origin = |name| Origin::Env(name);
        if let Some(b) = bind {
            self.bind = parse_ip(&b, env_origin("VIREO_BIND"), "transport.bind")?;
        }
        if let Some(p) = port {
            self.c2s_port = parse_num(&p, env_origin("VIREO_C2S_PORT"), "transport.c2s_port")?;
        }
        if let Some(p) = tls_port {
            self.c2s_tls_port = parse_num(
                &p,
                env_origin("VIREO_C2S_TLS_PORT"),
                "transport.c2s_tls_port",
            )?;
        }
        if let Some(e) = encryption {
            self.require_encryption = match e.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        origin: env_origin("VIREO_C2S_REQUIRE_ENCRYPTION"),
                        key: "stream.require_encryption",
                        message: format!("expected true or false, got {other:?}"),
                    })
                }
            };
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        let mut normalized = Vec::new();
        for d in &self.domains {
            match Jid::domain_jid(d) {
                Ok(j) if j.local().is_none() && j.resource().is_none() => {
                    normalized.push(j.domain().to_owned())
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        origin: self.origin("domains"),
                        key: "domains",
                        message: format!("{d:?} is not a valid domain name"),
                    })
                }
            }
        }
        if normalized.is_empty() {
            return Err(ConfigError::Invalid {
                origin: self.origin("domains"),
                key: "domains",
                message: "at least one domain is required".into(),
            });
        }
        self.domains = normalized;
        if self.scram_iterations < 4096 {
            return Err(ConfigError::Invalid {
                origin: self.origin("stream.scram_iterations"),
                key: "stream.scram_iterations",
                message: "must be at least 4096 (RFC 7677)".into(),
            });
        }
        if self.max_stanza_size < 10_000 {
            return Err(ConfigError::Invalid {
                origin: self.origin("stream.max_stanza_size"),
                key: "stream.max_stanza_size",
                message: "must be at least 10000 bytes (RFC 6120 §13.12)".into(),
            });
        }
        if self.c2s_port != 0 && self.c2s_port == self.c2s_tls_port {
            return Err(ConfigError::Invalid {
                origin: self.origin("transport.c2s_tls_port"),
                key: "transport.c2s_tls_port",
                message: format!("port {} is also the STARTTLS port", self.c2s_port),
            });
        }
        if self.certificate.is_some() != self.key.is_some() {
            return Err(ConfigError::Invalid {
                origin: self.origin("tls.certificate"),
                key: "tls.certificate",
                message: "tls.certificate and tls.key must be given together".into(),
            });
        }
        if self.mechanisms.is_empty() {
            return Err(ConfigError::Invalid {
                origin: self.origin("stream.mechanisms"),
                key: "stream.mechanisms",
                message: "at least one SASL mechanism is required".into(),
            });
        }
        Ok(())
    }

    /// The admin socket inside the data directory.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_path.join("admin.sock")
    }

    /// The store directory inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_path.join("store")
    }

    /// Directory for generated certificates.
    pub fn cert_dir(&self) -> PathBuf {
        self.data_path.join("certs")
    }
}

/// Records origins while reading `Spanned` values.
struct Setter<'a> {
    path: &'a Path,
    text: &'a str,
    origins: &'a mut BTreeMap<&'static str, Origin>,
}

impl Setter<'_> {
    fn get<T>(&mut self, key: &'static str, v: Option<Spanned<T>>) -> Option<T> {
        let v = v?;
        let line = line_of(self.text, v.span().start);
        self.origins.insert(
            key,
            Origin::File {
                path: self.path.to_owned(),
                line,
            },
        );
        Some(v.into_inner())
    }

    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

fn parse_ip(v: &str, origin: Origin, key: &'static str) -> Result<IpAddr, ConfigError> {
    let v = v.trim_matches(|c| c == '[' || c == ']');
    let v = if v == "*" { "0.0.0.0" } else { v };
    v.parse().map_err(|_| ConfigError::Invalid {
        origin,
        key,
        message: format!("{v:?} is not an IP address"),
    })
}

fn parse_num<T: std::str::FromStr>(
    v: &str,
    origin: Origin,
    key: &'static str,
) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Invalid {
        origin,
        key,
        message: format!("{v:?} is not a valid number here"),
    })
}

/// Paths in a file are relative to the file's directory.
fn relative_to(file: &Path, value: &str) -> PathBuf {
    let p = PathBuf::from(value);
    if p.is_absolute() {
        p
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

#[cfg(test)]
mod tests;
