//! SIGINT/SIGTERM: the first asks for a clean stop, the second exits at once.
//! SIGHUP (`capture` only): asks for every file output to be reopened, and
//! the capture goes on.
//!
//! The handlers are installed without `SA_RESTART`, so a blocking read (of
//! a slow pipe) returns `EINTR` and the reader sees the request. Both
//! signals are blocked in the thread that installs them until it calls
//! [`listen`]: threads started in between (workers, the writer) inherit the
//! mask, so a signal is always delivered to the listening thread, the one
//! that reads or runs the control loop.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static REOPEN: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
}

extern "C" fn on_hup(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

/// The signals handled.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Blocks (`SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) [`SIGNALS`] in the
/// calling thread.
fn mask(how: libc::c_int) {
    // SAFETY: a zeroed sigset_t initialised by sigemptyset, filled with
    // valid signal numbers, passed by pointer for the call's duration.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Installs the handlers for SIGINT and SIGTERM, and for SIGHUP when
/// `reopen` (else it keeps its default action, ending the program), and
/// blocks them in the calling thread until [`listen`].
pub fn install(reopen: bool) {
    mask(libc::SIG_BLOCK);
    let stop: extern "C" fn(libc::c_int) = on_signal;
    let hup: extern "C" fn(libc::c_int) = on_hup;
    for sig in SIGNALS {
        let handler = if sig != libc::SIGHUP {
            stop
        } else if reopen {
            hup
        } else {
            continue;
        };
        // SAFETY: the handlers only touch atomics and call _exit, both
        // async-signal-safe; the sigaction struct is zeroed (no flags: no
        // SA_RESTART) with an empty mask, and lives for the call.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Lets the signals reach the calling thread (after the threads
/// that must not see them were started).
pub fn listen() {
    mask(libc::SIG_UNBLOCK);
}

/// True once if a reopen was asked for since the last call.
pub fn take_reopen() -> bool {
    REOPEN.swap(false, Ordering::SeqCst)
}

/// True once a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The flag a stop request sets, for loops that poll it.
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// The exit status that says which signal stopped the program (128 + its
/// number, as shells report it), if one did.
pub fn exit_status() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => u8::try_from(128 + sig).ok(),
    }
}
