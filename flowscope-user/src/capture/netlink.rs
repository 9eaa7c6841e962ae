//! XDP through rtnetlink (`IFLA_XDP`): which program an interface runs, and
//! attaching or detaching one without a BPF link.
//!
//! The path for kernels without XDP links (before Linux 5.9) and for
//! `--xdp-attach netlink`. Such an attachment outlives the process: the
//! capture detaches it on every exit it controls, and the next start finds a
//! program of ours left by a `kill -9` and replaces it.
//! Attributes as in `include/uapi/linux/if_link.h`; extended ACKs
//! (`NETLINK_EXT_ACK`) carry the kernel's reason when it refuses.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
/// Clears `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3fff;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_EXT_ACK: libc::c_int = 11;

const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_EXPECTED_FD: u16 = 8;

/// `XDP_FLAGS_SKB_MODE`.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_FLAGS_REPLACE`: replace only the program `IFLA_XDP_EXPECTED_FD` names.
const XDP_FLAGS_REPLACE: u32 = 1 << 4;
const XDP_ATTACHED_DRV: u8 = 1;
const XDP_ATTACHED_SKB: u8 = 2;
const XDP_ATTACHED_MULTI: u8 = 4;

/// The XDP program an interface runs, as rtnetlink reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// Kernel id of the program.
    pub prog_id: u32,
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`.
    pub mode_flags: u32,
}

/// A message under construction: header, `ifinfomsg`, attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, ifindex: u32) -> Self {
        let mut b = vec![0u8; 32];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        // ifinfomsg: family AF_UNSPEC, index.
        b[20..24].copy_from_slice(&ifindex.to_ne_bytes());
        Msg(b)
    }

    /// Opens a nested attribute; returns where its length goes.
    fn nest(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        at
    }

    fn end_nest(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// Attributes of a buffer: (type without flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?));
        let kind = u16::from_ne_bytes(b.get(2..4)?.try_into().ok()?) & NLA_TYPE_MASK;
        let payload = b.get(4..len)?;
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((kind, payload))
    })
}

fn u32_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: we own the descriptor just created.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (an int) only. Extended ACKs are a
    // nicety: older kernels refuse the option and we go on without.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_NETLINK,
            NETLINK_EXT_ACK,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// Sends `msg` and returns the first reply message (header included).
fn request(msg: &[u8]) -> io::Result<Vec<u8>> {
    let fd = socket()?;
    // SAFETY: `msg` is valid for reads of its length; the kernel address is
    // the zeroed `sockaddr_nl` (pid 0).
    let sent = unsafe {
        let mut to: libc::sockaddr_nl = std::mem::zeroed();
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const to).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Turns an `NLMSG_ERROR` reply into `Ok` (an ACK) or the error, with the
/// kernel's extended-ACK text when it sent one.
fn check_ack(reply: &[u8]) -> io::Result<()> {
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if kind != Some(NLMSG_ERROR) {
        return Err(io::Error::other("unexpected rtnetlink reply"));
    }
    let flags = u16::from_ne_bytes([reply[6], reply[7]]);
    let code = reply
        .get(16..20)
        .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(-libc::EPROTO);
    if code == 0 {
        return Ok(());
    }
    let err = io::Error::from_raw_os_error(-code);
    if flags & NLM_F_ACK_TLVS == 0 {
        return Err(err);
    }
    // After the error code: the request's header, and its payload unless
    // the kernel capped it; then the TLVs.
    let request_len = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        reply.get(20..24).and_then(u32_of).unwrap_or(16) as usize
    };
    let tlvs = reply
        .get((20 + request_len).next_multiple_of(4)..)
        .unwrap_or_default();
    match attrs(tlvs).find(|(k, _)| *k == NLMSGERR_ATTR_MSG) {
        Some((_, text)) => {
            let text = String::from_utf8_lossy(text);
            Err(io::Error::new(
                err.kind(),
                format!("{err}: {}", text.trim_end_matches('\0')),
            ))
        }
        None => Err(err),
    }
}

/// The XDP program attached to `ifindex` in driver or generic mode, if any.
///
/// # Errors
///
/// The rtnetlink request failed.
pub fn attached(ifindex: u32) -> io::Result<Option<Attached>> {
    let reply = request(&Msg::new(RTM_GETLINK, NLM_F_REQUEST, ifindex).finish())?;
    if reply.get(4..6) != Some(&RTM_NEWLINK.to_ne_bytes()) {
        check_ack(&reply)?;
        return Err(io::Error::other("rtnetlink sent no link"));
    }
    let Some((_, xdp)) = attrs(reply.get(32..).unwrap_or_default()).find(|(k, _)| *k == IFLA_XDP)
    else {
        return Ok(None);
    };
    let (mut mode, mut single, mut drv, mut skb) = (0u8, None, None, None);
    for (kind, p) in attrs(xdp) {
        match kind {
            IFLA_XDP_ATTACHED => mode = p.first().copied().unwrap_or(0),
            IFLA_XDP_PROG_ID => single = u32_of(p),
            IFLA_XDP_DRV_PROG_ID => drv = u32_of(p),
            IFLA_XDP_SKB_PROG_ID => skb = u32_of(p),
            _ => {}
        }
    }
    let found = match mode {
        XDP_ATTACHED_DRV => single.map(|id| (id, XDP_FLAGS_DRV_MODE)),
        XDP_ATTACHED_SKB => single.map(|id| (id, XDP_FLAGS_SKB_MODE)),
        XDP_ATTACHED_MULTI => drv
            .map(|id| (id, XDP_FLAGS_DRV_MODE))
            .or(skb.map(|id| (id, XDP_FLAGS_SKB_MODE))),
        _ => None,
    };
    Ok(found.map(|(prog_id, mode_flags)| Attached {
        prog_id,
        mode_flags,
    }))
}

/// Attaches program `fd` to `ifindex` in `mode_flags` mode, or detaches with
/// `fd` = -1. With `expected`, only the program of that descriptor is
/// replaced (`XDP_FLAGS_REPLACE`, Linux 5.7), so a detach never removes
/// someone else's program.
///
/// # Errors
///
/// The kernel refused, with its reason.
pub fn set_xdp_fd(ifindex: u32, fd: i32, mode_flags: u32, expected: Option<i32>) -> io::Result<()> {
    let mut msg = Msg::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
    let nest = msg.nest(IFLA_XDP);
    msg.attr(IFLA_XDP_FD, &fd.to_ne_bytes());
    let flags = mode_flags
        | if expected.is_some() {
            XDP_FLAGS_REPLACE
        } else {
            0
        };
    msg.attr(IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    if let Some(old) = expected {
        msg.attr(IFLA_XDP_EXPECTED_FD, &old.to_ne_bytes());
    }
    msg.end_nest(nest);
    check_ack(&request(&msg.finish())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length_and_alignment() {
        let mut m = Msg::new(RTM_SETLINK, NLM_F_REQUEST, 7);
        let n = m.nest(IFLA_XDP);
        m.attr(IFLA_XDP_FD, &(-1i32).to_ne_bytes());
        m.attr(IFLA_XDP_ATTACHED, &[2]);
        m.end_nest(n);
        let b = m.finish();
        assert_eq!(u32_of(&b).unwrap() as usize, b.len());
        assert_eq!(b.len(), 32 + 4 + 8 + 8, "a 1-byte payload pads to 4");
        let (kind, nested) = attrs(&b[32..]).next().unwrap();
        assert_eq!(kind, IFLA_XDP);
        let inner: Vec<_> = attrs(nested).collect();
        assert_eq!(
            inner,
            [(IFLA_XDP_FD, &[0xff; 4][..]), (IFLA_XDP_ATTACHED, &[2][..])]
        );
    }
}
