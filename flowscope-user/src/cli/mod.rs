//! Subcommands of the `flowscope` binary.

#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod capture;
#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod capture_opts;
#[cfg(all(target_os = "linux", feature = "metrics"))]
pub mod live_view;
pub mod opts;
#[cfg(target_os = "linux")]
pub mod probe;
pub mod read;
pub mod signal;

/// Config-file keys only `capture` has (a shared file's, which `read`
/// ignores).
fn live_keys() -> &'static [&'static str] {
    #[cfg(all(target_os = "linux", feature = "metrics"))]
    return capture_opts::CaptureOpts::KEYS;
    #[cfg(not(all(target_os = "linux", feature = "metrics")))]
    return &[];
}
