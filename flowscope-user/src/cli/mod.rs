//! Subcommands of the `flowscope` binary.

#[cfg(live)]
pub mod capture;
#[cfg(live)]
pub mod capture_opts;
pub mod generate;
#[cfg(live)]
pub mod live_view;
pub mod opts;
#[cfg(live)]
pub mod probe;
pub mod read;
pub mod signal;

/// Config-file keys only `capture` has (a shared file's, which `read`
/// ignores).
fn live_keys() -> &'static [&'static str] {
    #[cfg(live)]
    return capture_opts::CaptureOpts::KEYS;
    #[cfg(not(live))]
    return &[];
}
