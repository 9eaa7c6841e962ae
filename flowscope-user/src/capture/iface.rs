//! Interface facts: existence, RX queue count, privileges.
//!
//! Everything goes through sockets of the calling thread's network namespace
//! (not `/sys`, which shows the namespace it was mounted in), so a thread
//! that entered a namespace with `setns` sees that namespace's interfaces.

use std::ffi::CString;

use super::CaptureError;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` from `<linux/ethtool.h>`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ifreq` with the `ifr_data` member.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// Number of RX queues of `iface`: ethtool's RX plus combined channels
/// (`ethtool -l`), or 1 when the driver does not report channels.
///
/// # Errors
///
/// [`CaptureError::NoSuchInterface`] when the interface does not exist in the
/// calling thread's network namespace.
pub fn rx_queue_count(iface: &str) -> Result<u32, CaptureError> {
    let missing = || CaptureError::NoSuchInterface(iface.to_owned());
    let cname = CString::new(iface).map_err(|_| missing())?;
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ {
        return Err(missing());
    }
    // SAFETY: `cname` is a valid NUL-terminated string.
    if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
        return Err(missing());
    }
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: (&raw mut ch).cast(),
        _pad: [0; 16],
    };
    for (d, s) in req.name.iter_mut().zip(cname.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Ok(1);
    }
    // SAFETY: SIOCETHTOOL reads `req` and writes at most an ethtool_channels
    // into `ch`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &raw mut req) };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return Ok(1);
    }
    Ok((ch.rx_count + ch.combined_count).max(1))
}

/// A capability of `<linux/capability.h>`: its name and bit.
type Cap = (&'static str, u32);

const CAP_NET_ADMIN: Cap = ("CAP_NET_ADMIN", 12);
const CAP_NET_RAW: Cap = ("CAP_NET_RAW", 13);
const CAP_IPC_LOCK: Cap = ("CAP_IPC_LOCK", 14);
const CAP_SYS_ADMIN: Cap = ("CAP_SYS_ADMIN", 21);
const CAP_PERFMON: Cap = ("CAP_PERFMON", 38);
const CAP_BPF: Cap = ("CAP_BPF", 39);

/// The capabilities a live capture needs instead of root, as the systemd
/// unit grants them: CAP_BPF to load the program and create its maps,
/// CAP_PERFMON for the verifier to allow its packet pointer arithmetic
/// (both implied by CAP_SYS_ADMIN), CAP_NET_ADMIN to load an XDP program,
/// create the XSKMAP and attach, CAP_NET_RAW for the AF_XDP sockets and
/// CAP_IPC_LOCK for the UMEM beyond `RLIMIT_MEMLOCK`.
pub const CAPABILITIES: [&str; 5] = [
    CAP_BPF.0,
    CAP_PERFMON.0,
    CAP_NET_ADMIN.0,
    CAP_NET_RAW.0,
    CAP_IPC_LOCK.0,
];

/// Fails with [`CaptureError::MissingCapabilities`] naming each capability
/// of [`CAPABILITIES`] the calling thread lacks for a capture that creates
/// AF_XDP sockets with `umem_bytes` of UMEM (none when `sockets` is false):
/// CAP_NET_RAW only with sockets, CAP_IPC_LOCK only when `RLIMIT_MEMLOCK` is
/// below `umem_bytes` (the kernel charges a UMEM to it unless the process
/// has CAP_IPC_LOCK). Passes when the effective set cannot be read: the
/// kernel's own refusals then say what is missing.
pub(super) fn check_privileges(sockets: bool, umem_bytes: u64) -> Result<(), CaptureError> {
    let Some(effective) = effective_capabilities() else {
        return Ok(());
    };
    let has = |(_, bit): Cap| effective & (1 << bit) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    for (cap, needed) in [
        (CAP_BPF, !admin),
        (CAP_PERFMON, !admin),
        (CAP_NET_ADMIN, true),
        (CAP_NET_RAW, sockets),
        (CAP_IPC_LOCK, sockets && memlock_limit() < umem_bytes),
    ] {
        if needed && !has(cap) {
            missing.push(cap.0);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CaptureError::MissingCapabilities(missing))
    }
}

/// The calling thread's effective capability set (`CapEff` of
/// `/proc/thread-self/status`).
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`u64::MAX` when unlimited).
fn memlock_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets the calling thread's effective set (`capset(2)`, version 3),
    /// keeping its permitted and inheritable sets.
    fn set_effective(effective: u64) {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Default, Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget fills two Data for a version-3 header; both outlive
        // the call.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
        assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
        data[0].effective = effective as u32;
        data[1].effective = (effective >> 32) as u32;
        // SAFETY: as above; capset with pid 0 changes only this thread.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
        assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
    }

    fn missing(r: Result<(), CaptureError>) -> Vec<&'static str> {
        match r {
            Ok(()) => Vec::new(),
            Err(CaptureError::MissingCapabilities(m)) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// A thread without some of the capabilities is told exactly which
    /// ones it lacks for the capture asked for; CAP_SYS_ADMIN stands in for
    /// CAP_BPF and CAP_PERFMON, and no socket needs neither CAP_NET_RAW nor
    /// CAP_IPC_LOCK. Without root there is nothing to drop: every one is
    /// named.
    #[test]
    fn what_is_missing_is_named() {
        let all = effective_capabilities().expect("CapEff in /proc/thread-self/status");
        let bits = |caps: &[Cap]| caps.iter().fold(0u64, |m, (_, b)| m | 1 << b);
        let locked = memlock_limit() < u64::MAX;
        if all & bits(&[CAP_SYS_ADMIN]) == 0 {
            let mut want = vec!["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_NET_RAW"];
            want.extend(locked.then_some("CAP_IPC_LOCK"));
            assert_eq!(missing(check_privileges(true, u64::MAX)), want);
            return;
        }
        std::thread::spawn(move || {
            set_effective(all & !bits(&[CAP_BPF, CAP_NET_RAW, CAP_IPC_LOCK]));
            assert_eq!(
                missing(check_privileges(false, 1 << 40)),
                Vec::<&str>::new()
            );
            let mut want = vec!["CAP_NET_RAW"];
            want.extend(locked.then_some("CAP_IPC_LOCK"));
            assert_eq!(missing(check_privileges(true, u64::MAX)), want);
            assert_eq!(missing(check_privileges(true, 0)), ["CAP_NET_RAW"]);
            set_effective(all & !bits(&[CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN]));
            assert_eq!(
                missing(check_privileges(false, 0)),
                ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]
            );
            set_effective(all & !bits(&[CAP_SYS_ADMIN]));
            assert_eq!(
                missing(check_privileges(true, u64::MAX)),
                Vec::<&str>::new()
            );
        })
        .join()
        .expect("the thread's assertions hold");
    }
}
