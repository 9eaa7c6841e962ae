//! Subcommands of the `flowscope` binary.

#[cfg(target_os = "linux")]
pub mod capture;
#[cfg(target_os = "linux")]
pub mod capture_opts;
pub mod generate;
#[cfg(target_os = "linux")]
pub mod live_view;
pub mod opts;
#[cfg(target_os = "linux")]
pub mod probe;
pub mod read;
pub mod signal;

/// Config-file keys only `capture` has (a shared file's, which `read`
/// ignores).
fn live_keys() -> &'static [&'static str] {
    #[cfg(target_os = "linux")]
    return capture_opts::CaptureOpts::KEYS;
    #[cfg(not(target_os = "linux"))]
    return &[];
}
