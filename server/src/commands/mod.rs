//! One module per command.

pub mod cert;
pub mod import;
pub mod run;
pub mod users;
