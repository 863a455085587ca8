//! One module per command.

pub mod about;
pub mod backup;
pub mod cert;
pub mod cert_import;
pub mod check_certs;
pub mod check_config;
pub mod check_dns;
pub mod check_s2s;
pub mod config_init;
pub mod config_show;
pub mod config_test;
pub mod import;
pub mod module_list;
pub mod reload;
pub mod run;
pub mod storage;
pub mod token;
pub mod users;
pub mod xep0227;
