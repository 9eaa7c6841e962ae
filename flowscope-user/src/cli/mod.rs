//! Subcommands of the `flowscope` binary.

#[cfg(target_os = "linux")]
pub mod capture;
pub mod read;
pub mod signal;
