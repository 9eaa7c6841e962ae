//! Capture errors: what failed, where, and what to try.

use std::io;

/// Why a capture could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The capabilities that the capture needs and this process lacks.
    #[error(
        "live capture needs root or the capabilities {}; this process lacks {}: run it as root or \
         grant those (the systemd unit grants exactly them)",
        super::iface::CAPABILITIES.join(", "),
        .0.join(", ")
    )]
    MissingCapabilities(Vec<&'static str>),
    /// The interface does not exist.
    #[error("no interface named {0:?}; list interfaces with `ip link`")]
    NoSuchInterface(String),
    /// Asked for more queues than the interface has.
    #[error(
        "interface {iface} has {available} RX queue(s), {requested} requested; see `ethtool -l {iface}`"
    )]
    QueueOutOfRange {
        /// Interface.
        iface: String,
        /// Requested count.
        requested: u32,
        /// Available count.
        available: u32,
    },
    /// A flag value is invalid.
    #[error("{0}")]
    BadConfig(String),
    /// The binary was built without the XDP object.
    #[error(
        "this flowscope binary has no XDP program embedded; build it with `cargo xtask build` (or run `cargo xtask run`)"
    )]
    NoEbpfObject,
    /// Loading the object or the program failed (verifier log included).
    #[error(
        "loading the XDP program failed: {0}; check `cargo xtask doctor` (BPF enabled, CAP_BPF)"
    )]
    Load(String),
    /// The kernel would not load the program: one line, the verifier log in
    /// a file.
    #[error("loading the XDP program failed: {what}; {hint} (verifier log: {})", log_display(.log))]
    Verifier {
        /// What was refused.
        what: String,
        /// What to try.
        hint: &'static str,
        /// Where the full verifier log was saved, or why it was not.
        log: Result<std::path::PathBuf, String>,
    },
    /// The filter expression cannot run in the XDP program.
    #[error("filter {expr:?} in XDP: {reason}")]
    Filter {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// Attaching failed in the requested mode.
    #[error("attaching XDP to {iface} in {mode} mode failed: {reason}; {hint}")]
    Attach {
        /// Interface.
        iface: String,
        /// Mode label.
        mode: &'static str,
        /// Kernel's answer.
        reason: String,
        /// What to try.
        hint: &'static str,
    },
    /// A BPF map operation failed.
    #[error("BPF map {map}: {reason}")]
    Map {
        /// Map name.
        map: &'static str,
        /// What failed.
        reason: String,
    },
    /// Creating a UMEM or AF_XDP socket failed.
    #[error(
        "AF_XDP socket on {iface} queue {queue}: {reason}; check that the kernel has CONFIG_XDP_SOCKETS (`cargo xtask doctor`)"
    )]
    Socket {
        /// Interface.
        iface: String,
        /// Queue.
        queue: u32,
        /// What failed.
        reason: String,
    },
    /// The queue already has an AF_XDP socket (the kernel said EBUSY).
    #[error(
        "queue {queue} of {iface} is already bound by another AF_XDP socket — another flowscope? (stop it, or capture other queues with --queues)"
    )]
    QueueBusy {
        /// Interface.
        iface: String,
        /// Queue.
        queue: u32,
    },
    /// Spawning a worker thread failed.
    #[error("starting worker thread: {0}")]
    Thread(#[source] io::Error),
    /// A worker thread panicked.
    #[error("worker {0} panicked")]
    WorkerPanicked(usize),
}

fn log_display(log: &Result<std::path::PathBuf, String>) -> String {
    match log {
        Ok(path) => path.display().to_string(),
        Err(why) => why.clone(),
    }
}
