//! Command-line interface (prosodyctl users should feel at home).

use argh::FromArgs;
use std::path::PathBuf;

/// Parse the command line like `argh::from_env`, except that a lone `-`
/// after `import-users` means standard input (argh would take it for an
/// option).
pub fn parse() -> Cli {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "import-users") {
        let rest = &args[at + 1..];
        if !rest.iter().any(|a| a == "--") {
            if let Some(dash) = rest.iter().position(|a| a == "-") {
                args.insert(at + 1 + dash, "--".into());
            }
        }
    }
    let name = args
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("vireo")
        .to_owned();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    Cli::from_args(&[&name], &rest).unwrap_or_else(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            std::process::exit(0)
        }
        Err(()) => {
            eprintln!("{}\nRun {name} --help for more information.", exit.output);
            std::process::exit(1)
        }
    })
}

/// Vireo: an XMPP server.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// configuration file (default: $VIREO_CONFIG_PATH, else built-in defaults)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
    #[argh(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(RunCmd),
    Reload(ReloadCmd),
    AddUser(AddUserCmd),
    Passwd(PasswdCmd),
    DelUser(DelUserCmd),
    ImportUsers(ImportUsersCmd),
    Export(ExportCmd),
    Import(ImportCmd),
    User(UserCmd),
    Cert(CertCmd),
    Config(ConfigCmd),
    Check(CheckCmd),
    Module(ModuleCmd),
    Token(TokenCmd),
    Storage(StorageCmd),
    About(AboutCmd),
}

/// Run the server.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunCmd {
    /// configuration file
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Make the running server re-read its configuration (like SIGHUP): the
/// certificate, limits and log level change without dropping sessions;
/// prints what was reloaded and what needs a restart, or the configuration
/// error (exit 1; the server keeps its running configuration).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reload")]
pub struct ReloadCmd {
    /// the server's admin socket (default: admin.sock in the data directory)
    #[argh(option)]
    pub socket: Option<PathBuf>,
}

/// Create an account (password from the terminal or one line of stdin).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "adduser")]
pub struct AddUserCmd {
    /// the account, user@domain
    #[argh(positional)]
    pub jid: String,
}

/// Change an account's password.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "passwd")]
pub struct PasswdCmd {
    /// the account, user@domain
    #[argh(positional)]
    pub jid: String,
}

/// Delete an account and end its sessions.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "deluser")]
pub struct DelUserCmd {
    /// the account, user@domain
    #[argh(positional)]
    pub jid: String,
}

/// Write the store (or one account) as a XEP-0227 file: accounts with
/// their SCRAM keys, rosters, vCards, private XML, offline messages,
/// archives, PEP, and services' nodes and room archives. The same store
/// always gives the same bytes. The server must be stopped.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct ExportCmd {
    /// only this account (user@domain)
    #[argh(option)]
    pub user: Option<String>,
    /// the file to write (`-` for standard output)
    #[argh(positional)]
    pub file: String,
}

/// Read a XEP-0227 file (Vireo's, `prosody-migrator`'s, ejabberd's
/// `export_piefxis`) into the store. Existing accounts are skipped and
/// listed. The server must be stopped.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct ImportCmd {
    /// read and judge the whole file, writing nothing (the report says
    /// what an import would store and skip)
    #[argh(switch)]
    pub check: bool,
    /// the file to read
    #[argh(positional)]
    pub file: String,
}

/// Per-account commands.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct UserCmd {
    #[argh(subcommand)]
    pub action: UserAction,
}

/// `vireo user` subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    Export(UserExportCmd),
}

/// Everything stored for one account, as a XEP-0227 file (the data
/// protection export, GDPR Art. 15/20; see spec/security.md). The server
/// must be stopped.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct UserExportCmd {
    /// the account, user@domain
    #[argh(positional)]
    pub jid: String,
    /// the file to write (default: standard output)
    #[argh(positional)]
    pub file: Option<String>,
}

/// Create many accounts at once from FILE (`user@domain password` per line,
/// `-` = stdin), directly on the store: the server must be stopped.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import-users")]
pub struct ImportUsersCmd {
    /// the account list, or `-` for standard input
    #[argh(positional)]
    pub file: String,
    /// worker threads deriving the SCRAM keys (default: one per core)
    #[argh(option)]
    pub threads: Option<usize>,
}

/// Certificate management.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "cert")]
pub struct CertCmd {
    #[argh(subcommand)]
    pub action: CertAction,
}

/// Certificate actions.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum CertAction {
    Generate(CertGenerateCmd),
    Import(CertImportCmd),
}

/// Generate a self-signed certificate and key for a domain.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "generate")]
pub struct CertGenerateCmd {
    /// the domain
    #[argh(positional)]
    pub domain: String,
    /// output directory (default: the data directory's certs/)
    #[argh(option)]
    pub out: Option<PathBuf>,
}

/// Validate a certificate and key for DOMAIN (PEM, key matches, names cover
/// DOMAIN, not expired) and install them in the data directory's certs/.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct CertImportCmd {
    /// the domain the certificate is for
    #[argh(positional)]
    pub domain: String,
    /// the certificate (PEM, chain allowed)
    #[argh(positional)]
    pub cert: PathBuf,
    /// the private key (PEM)
    #[argh(positional)]
    pub key: PathBuf,
}

/// Bearer tokens of the admin API (/api/ on the HTTP ports).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenCmd {
    #[argh(subcommand)]
    pub action: TokenAction,
}

/// Token actions.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TokenAction {
    Create(TokenCreateCmd),
    List(TokenListCmd),
    Revoke(TokenRevokeCmd),
}

/// Create a token and print it (shown once: only its hash is kept, in the
/// data directory's api-tokens). Works while the server runs.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "create")]
pub struct TokenCreateCmd {
    /// a name for the token, in logs and listings (letters, digits, - _ .)
    #[argh(positional)]
    pub name: String,
}

/// List the tokens (names and creation times, never the tokens).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct TokenListCmd {}

/// Revoke a token: calls with it fail from now on.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "revoke")]
pub struct TokenRevokeCmd {
    /// the token's name
    #[argh(positional)]
    pub name: String,
}

/// The store: move it between backends, upgrade its schema.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "storage")]
pub struct StorageCmd {
    #[argh(subcommand)]
    pub action: StorageAction,
}

/// Storage actions.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum StorageAction {
    Migrate(StorageMigrateCmd),
    Upgrade(StorageUpgradeCmd),
}

/// Copy the whole store from one backend to another (redb, sled,
/// postgresql: the data directory's store or the configured database),
/// then read both back and compare. The server must be stopped; the target
/// must be empty. Afterwards set storage.driver to the target.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "migrate")]
pub struct StorageMigrateCmd {
    /// the backend to copy from: redb, sled or postgresql
    #[argh(option)]
    pub from: String,
    /// the backend to copy to: redb, sled or postgresql
    #[argh(option)]
    pub to: String,
    /// only compare the two stores (a copy made earlier), copy nothing
    #[argh(switch)]
    pub verify_only: bool,
}

/// Bring the PostgreSQL schema up to date now (the server also does it at
/// start) and print its version.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "upgrade")]
pub struct StorageUpgradeCmd {}

/// Configuration commands.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config")]
pub struct ConfigCmd {
    #[argh(subcommand)]
    pub action: ConfigAction,
}

/// Configuration actions.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ConfigAction {
    Init(ConfigInitCmd),
    Show(ConfigShowCmd),
    Reference(ConfigReferenceCmd),
    Backup(ConfigBackupCmd),
    Test(ConfigTestCmd),
}

/// Write a timestamped archive of the configuration (and, with --data, of
/// the store) into DEST.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct ConfigBackupCmd {
    /// directory to write the archive into (created if missing)
    #[argh(positional)]
    pub dest: PathBuf,
    /// also snapshot the embedded store and certificates (server stopped)
    #[argh(switch)]
    pub data: bool,
    /// compress the archive with gzip (.tar.gz)
    #[argh(switch)]
    pub gzip: bool,
}

/// Start the configured server in-process on loopback ports with a
/// throwaway store, log a temporary account in, message itself, shut down.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "test")]
pub struct ConfigTestCmd {}

/// Checks (exit 0 only when clean).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct CheckCmd {
    #[argh(subcommand)]
    pub action: CheckAction,
}

/// What to check.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum CheckAction {
    Config(CheckConfigCmd),
    Certs(CheckCertsCmd),
    Dns(CheckDnsCmd),
    S2s(CheckS2sCmd),
}

/// Whether a federating server can reach DOMAIN: connect to its s2s
/// candidates in order, open a stream, STARTTLS (or direct TLS), and judge
/// the certificate it presents (chain and RFC 6125 identity). Exit 1 when
/// it is unreachable, has no TLS, or its certificate does not verify.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "s2s")]
pub struct CheckS2sCmd {
    /// the remote domain
    #[argh(positional)]
    pub domain: String,
    /// our domain, the stream's `from` (default: localhost)
    #[argh(option, default = "String::from(\"localhost\")")]
    pub from: String,
    /// connect here (HOST:PORT, STARTTLS) instead of resolving DOMAIN
    #[argh(option)]
    pub route: Option<std::net::SocketAddr>,
    /// ask this nameserver (IP:PORT; repeatable) instead of /etc/resolv.conf's
    #[argh(option)]
    pub nameserver: Vec<std::net::SocketAddr>,
    /// trusted CA certificates (PEM) instead of the system's
    /// (/etc/ssl/certs/ca-certificates.crt)
    #[argh(option)]
    pub ca: Option<std::path::PathBuf>,
    /// seconds per connection attempt and per answer (default 10)
    #[argh(option, default = "10")]
    pub timeout: u64,
}

/// How a server would reach DOMAIN: its s2s SRV records (_xmpps-server,
/// _xmpp-server), their addresses, the A/AAAA fallback, and the order a
/// connection would try. Exit 1 when nothing is reachable.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "dns")]
pub struct CheckDnsCmd {
    /// the remote domain
    #[argh(positional)]
    pub domain: String,
    /// ask this nameserver (IP:PORT; repeatable) instead of /etc/resolv.conf's
    #[argh(option)]
    pub nameserver: Vec<std::net::SocketAddr>,
}

/// Each hosted domain's certificate: expiry, names, key.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "certs")]
pub struct CheckCertsCmd {}

/// Module commands.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "module")]
pub struct ModuleCmd {
    #[argh(subcommand)]
    pub action: ModuleAction,
}

/// Module actions.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ModuleAction {
    List(ModuleListCmd),
}

/// Every module by stack layer: specifications, built or not, enabled or
/// not per domain, and why.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ModuleListCmd {}

/// Version, build, paths, features built in, server state.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "about")]
pub struct AboutCmd {}

/// Write a complete, commented configuration tree into DIR (and a
/// self-signed certificate for the domain).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
pub struct ConfigInitCmd {
    /// the directory to write (created if missing)
    #[argh(positional)]
    pub dir: PathBuf,
    /// the hosted domain (default: localhost)
    #[argh(option)]
    pub domain: Option<String>,
    /// production, development or docker (default: production)
    #[argh(option)]
    pub environment: Option<String>,
    /// overwrite an existing tree's files
    #[argh(switch)]
    pub force: bool,
}

/// Print the effective configuration, each value with its origin.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub struct ConfigShowCmd {
    /// a key (e.g. transport.c2s_port) or a prefix (transport, modules)
    #[argh(positional)]
    pub key: Option<String>,
    /// show a virtual host: its certificate and modules
    #[argh(option)]
    pub domain: Option<String>,
}

/// Print the configuration reference (spec/config.md) generated from the
/// schema.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "reference")]
pub struct ConfigReferenceCmd {}

/// Parse and validate the whole configuration; print every error and
/// warning with its location (exit 1 on errors).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config")]
pub struct CheckConfigCmd {}
