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

/// Fails with [`CaptureError::NotRoot`] unless the effective user is root.
pub(super) fn check_root() -> Result<(), CaptureError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(CaptureError::NotRoot)
    }
}
