//! AF_XDP sockets of one RX queue, sharing that queue's UMEM and fill ring.
//!
//! The sockets of a queue are bound with `XDP_SHARED_UMEM`; the kernel hands
//! the fill and completion rings to the first one only
//! (<https://docs.kernel.org/networking/af_xdp.html#xdp-shared-umem-bind-flag>),
//! so they sit behind a mutex each worker takes once per batch to give its
//! frames back — never per packet.

use std::{
    num::NonZeroU32,
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
};

use flowscope_common::XdpMeta;
use xsk_rs::{
    CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem,
    config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig},
};

use super::{CaptureError, RingSizes};

/// The fill ring of one queue, shared by its sockets.
pub(super) struct SharedFill {
    pub fill: FillQueue,
    /// Kept alive with the fill ring (we never transmit).
    _comp: CompQueue,
}

/// One socket of a queue, ready to be moved into its worker.
pub(super) struct XskSocket {
    pub index_in_queue: u32,
    pub fd: i32,
    pub zero_copy: bool,
    pub rx: RxQueue,
    pub umem: Umem,
    pub fill: Arc<Mutex<SharedFill>>,
    /// The frame size, to know where a frame starts.
    pub frame_size: usize,
    /// Kept alive: dropping it would release the socket.
    _tx: TxQueue,
}

// SAFETY: every field is owned by the one worker thread the socket moves to;
// the UMEM region is shared with the other sockets of the queue but each frame
// is only touched by the socket that received it, and the shared fill ring is
// behind a mutex.
unsafe impl Send for XskSocket {}

const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

pub(super) struct QueueSockets;

impl QueueSockets {
    /// Creates the UMEM of `queue`, `count` sockets bound to it (with
    /// `XDP_USE_NEED_WAKEUP` when `need_wakeup`), and fills the fill ring
    /// with every frame before any traffic is redirected.
    pub fn create(
        iface: &str,
        queue: u32,
        count: u32,
        rings: &RingSizes,
        need_wakeup: bool,
    ) -> Result<Vec<XskSocket>, CaptureError> {
        let err = |reason: String| CaptureError::Socket {
            iface: iface.to_owned(),
            queue,
            reason,
        };
        let qsize = |n: u32, what: &str| {
            QueueSize::new(n).map_err(|e| err(format!("{what} size {n}: {e}")))
        };
        let umem_cfg = UmemConfig::builder()
            .frame_size(
                FrameSize::new(rings.frame_size).map_err(|e| err(format!("frame size: {e}")))?,
            )
            .fill_queue_size(qsize(rings.fill_slots(), "fill ring")?)
            .comp_queue_size(qsize(64, "completion ring")?)
            .frame_headroom(0)
            .build()
            .map_err(|e| err(format!("UMEM config: {e}")))?;
        let frames =
            NonZeroU32::new(rings.fill_ring).ok_or_else(|| err("fill ring size 0".into()))?;
        let (umem, descs) =
            Umem::new(umem_cfg, frames, false).map_err(|e| err(format!("UMEM: {e}")))?;
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(qsize(rings.rx_ring, "RX ring")?)
            .tx_queue_size(qsize(64, "TX ring")?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(if need_wakeup {
                BindFlags::XDP_USE_NEED_WAKEUP
            } else {
                BindFlags::empty()
            })
            .build();
        let name: Interface = iface
            .parse()
            .map_err(|_| err("bad interface name".into()))?;
        let mut shared: Option<Arc<Mutex<SharedFill>>> = None;
        let mut out = Vec::new();
        for i in 0..count {
            // SAFETY: INHIBIT_PROG_LOAD is set, as xsk-rs requires for a UMEM
            // shared by several sockets on one (interface, queue).
            let (tx, rx, rings_pair) =
                unsafe { xsk_rs::Socket::new(sock_cfg, &umem, &name, queue) }.map_err(|e| {
                    let errno = std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<std::io::Error>())
                        .and_then(std::io::Error::raw_os_error);
                    match errno {
                        Some(libc::EBUSY) => CaptureError::QueueBusy {
                            iface: iface.to_owned(),
                            queue,
                        },
                        _ => err(format!("socket {i}: {e}")),
                    }
                })?;
            if let Some((fill, comp)) = rings_pair {
                shared = Some(Arc::new(Mutex::new(SharedFill { fill, _comp: comp })));
            }
            let fill = shared
                .clone()
                .ok_or_else(|| err("the kernel gave no fill ring to the first socket".into()))?;
            let fd = rx.fd().as_raw_fd();
            out.push(XskSocket {
                index_in_queue: i,
                fd,
                zero_copy: is_zero_copy(fd),
                rx,
                umem: umem.clone(),
                fill,
                frame_size: rings.frame_size as usize,
                _tx: tx,
            });
        }
        if let Some(shared) = &shared {
            let mut guard = shared
                .lock()
                .map_err(|_| err("fill ring lock poisoned".into()))?;
            // SAFETY: the descriptors are fresh frames of this UMEM, owned by
            // nobody yet; the ring has room for all of them (twice as many
            // slots as frames).
            let produced = unsafe { guard.fill.produce(&descs) };
            if produced != descs.len() {
                return Err(err(format!(
                    "fill ring took {produced} of {} frames",
                    descs.len()
                )));
            }
        }
        Ok(out)
    }
}

/// Whether the kernel bound `fd` in zero-copy mode (`XDP_OPTIONS`).
fn is_zero_copy(fd: i32) -> bool {
    let mut opts: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `opts`.
    let rc =
        unsafe { libc::getsockopt(fd, SOL_XDP, XDP_OPTIONS, (&raw mut opts).cast(), &mut len) };
    rc == 0 && opts & XDP_OPTIONS_ZEROCOPY != 0
}

/// A received frame, and the XDP metadata the program wrote in front of it
/// when `read_meta` (the program was loaded with the block on).
///
/// # Safety
///
/// `desc` must be a descriptor just consumed from an RX ring of `umem`, not
/// yet given back to the fill ring.
pub(super) unsafe fn frame_and_meta<'a>(
    umem: &'a Umem,
    desc: &FrameDesc,
    frame_size: usize,
    read_meta: bool,
) -> (&'a [u8], Option<XdpMeta>) {
    // SAFETY: per this function's contract the frame belongs to `umem` and is
    // ours until it goes back to the fill ring.
    let data = unsafe { umem.data(desc) }.contents();
    // SAFETY: the returned slice borrows `umem`, which outlives 'a; `data()`
    // only ties it to the temporary segment handle.
    let data: &'a [u8] = unsafe { std::slice::from_raw_parts(data.as_ptr(), data.len()) };
    let offset_in_frame = desc.addr() % frame_size;
    if !read_meta || offset_in_frame < XdpMeta::SIZE {
        return (data, None);
    }
    let mut raw = [0u8; XdpMeta::SIZE];
    // SAFETY: the XdpMeta::SIZE bytes before the packet data lie inside the
    // same UMEM frame (checked just above: the data starts at least that far
    // into the frame, in the XDP headroom the kernel reserves), which is
    // mapped for the UMEM's whole life and written by the kernel before it
    // published the descriptor.
    unsafe {
        std::ptr::copy_nonoverlapping(
            data.as_ptr().sub(XdpMeta::SIZE),
            raw.as_mut_ptr(),
            XdpMeta::SIZE,
        )
    };
    let meta = XdpMeta::from_bytes(&raw);
    (data, meta.is_valid_for(data.len()).then_some(meta))
}
