//! Subcommands of the `flowscope` binary.

#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod capture;
#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod capture_opts;
#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod live_view;
#[cfg(target_os = "linux")]
pub mod probe;
pub mod read;
pub mod signal;
