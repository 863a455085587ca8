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
    AddUser(AddUserCmd),
    Passwd(PasswdCmd),
    DelUser(DelUserCmd),
    ImportUsers(ImportUsersCmd),
    Cert(CertCmd),
}

/// Run the server.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunCmd {
    /// configuration file
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
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
