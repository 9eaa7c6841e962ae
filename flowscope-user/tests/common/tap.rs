//! What the host's own stack receives on an interface: a packet socket
//! (`AF_PACKET`, every protocol) bound to it sees each frame the stack
//! takes in, so behind an XDP program exactly the frames it passed, and
//! none it dropped or redirected.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

/// A packet socket on one interface, for incoming frames.
pub struct StackTap {
    fd: OwnedFd,
}

impl StackTap {
    /// Opens it on `iface` of the calling thread's namespace, with a
    /// receive buffer large enough to hold a test's traffic unread.
    pub fn open(iface: &str) -> Self {
        let name = CString::new(iface).unwrap();
        // SAFETY: a valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "no interface {iface}");
        // Protocol 0 receives nothing until bound to the interface below.
        // SAFETY: plain syscall with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            raw >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let bytes: libc::c_int = 64 << 20;
        // SAFETY: the value points to a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
        // SAFETY: sockaddr_ll is plain data; zeroes are valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the length given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        Self { fd }
    }

    /// The incoming frames received so far: read until `want` of them
    /// arrived or `wait` passed, then whatever else is already queued.
    pub fn incoming(&self, want: usize, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: sockaddr_ll is plain data; zeroes are valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` and `from` are writable for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&raw mut from).cast(),
                    &mut len,
                )
            };
            if let Ok(n) = usize::try_from(n) {
                if from.sll_pkttype != libc::PACKET_OUTGOING {
                    frames.push(buf[..n].to_vec());
                }
                continue;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "recvfrom: {e}");
            if frames.len() >= want || Instant::now() >= deadline {
                return frames;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Frames the kernel dropped for want of room in this socket's buffer.
    pub fn drops(&self) -> u32 {
        // SAFETY: tpacket_stats is plain data; zeroes are valid.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` is writable for the length given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        assert_eq!(
            rc,
            0,
            "PACKET_STATISTICS: {}",
            std::io::Error::last_os_error()
        );
        st.tp_drops
    }
}
