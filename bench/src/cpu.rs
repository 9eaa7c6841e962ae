//! CPU pinning, which is how an `AF_PACKET` sender chooses its TX queue.
//!
//! With `PACKET_QDISC_BYPASS`, the kernel's `packet_pick_tx_queue` records
//! `cpu % real_num_tx_queues` as the skb's queue and, on devices without
//! `ndo_select_queue` and without XPS (veth), the frame leaves on that TX
//! queue (net/packet/af_packet.c; `skb_tx_hash` in net/core/dev.c). A veth
//! delivers a frame on the peer's RX queue with the TX queue's index
//! (drivers/net/veth.c, `veth_xmit`). So a thread pinned to CPU `c` sends on
//! queue `c % n`.

use std::io;
use std::path::Path;

/// CPUs this process may run on (`sched_getaffinity`), ascending.
///
/// # Errors
/// The `sched_getaffinity` error.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all zeroes is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, which outlives the call.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu < max`, the capacity of the set.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
///
/// # Errors
/// The `sched_setaffinity` error (for example a CPU outside the allowed set).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the pointer and size describe `set`; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins a benchmark's thread to `cpu`, or by default to the last CPU it may
/// run on, and says so (as `who`) on standard error; failing to pin only
/// costs steadiness, so it is reported, not fatal.
pub fn pin_benchmark(who: &str, cpu: Option<usize>) {
    let cpu = cpu.or_else(|| allowed_cpus().ok().and_then(|c| c.last().copied()));
    if let Some(cpu) = cpu {
        match pin_current_thread(cpu) {
            Ok(()) => eprintln!("{who}: pinned to CPU {cpu}"),
            Err(e) => eprintln!("{who}: not pinned ({e})"),
        }
    }
}

/// Number of TX queues of `iface` (entries `tx-N` in
/// `/sys/class/net/IFACE/queues`, which is `real_num_tx_queues`).
///
/// # Errors
/// When the directory cannot be read (no such interface).
pub fn tx_queues(iface: &str) -> io::Result<usize> {
    let dir = Path::new("/sys/class/net").join(iface).join("queues");
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        if entry?.file_name().to_string_lossy().starts_with("tx-") {
            n += 1;
        }
    }
    Ok(n)
}

/// The first allowed CPU whose traffic leaves on TX queue `queue` of a
/// device with `tx_queues` queues (`cpu % tx_queues == queue`).
pub fn cpu_for_queue(queue: usize, tx_queues: usize, allowed: &[usize]) -> Option<usize> {
    if tx_queues == 0 {
        return None;
    }
    allowed.iter().copied().find(|cpu| cpu % tx_queues == queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_for_queue_uses_modulo_over_allowed_cpus() {
        assert_eq!(cpu_for_queue(1, 2, &[0, 1, 2, 3]), Some(1));
        assert_eq!(cpu_for_queue(0, 2, &[1, 2, 3]), Some(2));
        assert_eq!(cpu_for_queue(1, 2, &[0, 2]), None);
        assert_eq!(cpu_for_queue(3, 4, &[0, 1]), None);
        assert_eq!(cpu_for_queue(0, 0, &[0]), None);
    }

    #[test]
    fn allowed_cpus_include_the_current_one() {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        let allowed = allowed_cpus().unwrap();
        assert!(allowed.contains(&usize::try_from(cpu).unwrap()));
    }
}
