//! The Vireo server as a library: the command line, its commands, the
//! layered configuration and the module catalog. `main.rs` is only the
//! process entry point; the library exists so that tests and the fuzz
//! targets (`fuzz/`) can drive the configuration loader in-process.

pub mod allocator;
pub mod cli;
pub mod commands;
pub mod config;
pub mod modules;
pub mod password;
pub mod portable;
pub mod store;
