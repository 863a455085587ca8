//! One module per command.

pub mod cert;
pub mod run;
pub mod users;
