//! A raw `AF_PACKET` socket that sends whole Ethernet frames in `sendmmsg`
//! batches, bypassing the qdisc layer (`PACKET_QDISC_BYPASS`, packet(7)).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Most frames handed to one `sendmmsg` call.
pub const MAX_BATCH: usize = 64;

/// Interface index of `iface`.
///
/// # Errors
/// `NotFound` when there is no such interface.
pub fn ifindex(iface: &str) -> io::Result<i32> {
    let name = CString::new(iface)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    i32::try_from(index)
        .ok()
        .filter(|&i| i != 0)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such interface: {iface}"),
            )
        })
}

/// A send-only packet socket for one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
}

impl PacketSocket {
    /// Opens a send-only socket for the interface with index `ifindex`.
    ///
    /// Protocol 0 registers no receive hook, so the socket never queues
    /// incoming frames.
    ///
    /// # Errors
    /// `socket` (EPERM without CAP_NET_RAW) or `setsockopt` errors.
    pub fn open(ifindex: i32) -> io::Result<PacketSocket> {
        // SAFETY: plain syscall with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: the option value points to a c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sockaddr_ll is plain data; zeroes are valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex;
        Ok(PacketSocket { fd, addr })
    }

    /// Sends up to [`MAX_BATCH`] frames with one `sendmmsg` and returns how
    /// many the kernel took, in order (the rest must be sent again).
    ///
    /// # Errors
    /// The `sendmmsg` error when not even the first frame was taken
    /// (`ENOBUFS` means the device queue was full: retry).
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let n = frames.len().min(MAX_BATCH);
        // SAFETY: iovec and mmsghdr are plain data; zeroes are valid.
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for ((frame, v), m) in frames.iter().zip(&mut iov).zip(&mut msgs) {
            v.iov_base = frame.as_ptr().cast_mut().cast();
            v.iov_len = frame.len();
            m.msg_hdr.msg_name = (&raw const self.addr).cast_mut().cast();
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `n` headers point at live iovecs, frames and
        // `self.addr`; the kernel only reads them.
        let rc = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        usize::try_from(rc).map_err(|_| io::Error::last_os_error())
    }
}
