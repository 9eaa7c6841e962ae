//! Subcommands of the `flowscope` binary.

#[cfg(target_os = "linux")]
pub mod capture;
#[cfg(target_os = "linux")]
pub mod capture_opts;
pub mod generate;
#[cfg(target_os = "linux")]
pub mod live_view;
#[cfg(target_os = "linux")]
pub mod probe;
pub mod read;
pub mod signal;
