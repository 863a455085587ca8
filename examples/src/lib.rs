//! Examples of embedding Vireo's library crates. Each binary in `src/bin`
//! is a thin `main` around a function here, so `cargo test -p vireo-examples`
//! proves the examples actually work.

pub mod component;
pub mod custom_module;
pub mod fortune;
pub mod in_memory;
pub mod in_process;
