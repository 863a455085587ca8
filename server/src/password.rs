//! Reading a password for admin commands: prompted without echo on a
//! terminal, one line from stdin otherwise (so scripts can pipe it in).

use std::io::{BufRead, IsTerminal};

/// Why no password could be read.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("reading the password failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no password given on standard input")]
    Empty,
    #[error("the passwords do not match")]
    Mismatch,
}

/// Read a new password (asked twice on a terminal).
pub fn read_new_password(prompt: &str) -> Result<String, PasswordError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let second = rpassword::prompt_password("Retype password: ")?;
        if first != second {
            return Err(PasswordError::Mismatch);
        }
        if first.is_empty() {
            return Err(PasswordError::Empty);
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(PasswordError::Empty);
    }
    Ok(line)
}
