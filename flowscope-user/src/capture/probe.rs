//! What this kernel offers the datapath, asked before anything is loaded.
//!
//! Each optional feature is probed the way `bpftool feature probe` and
//! libbpf do it: a tiny program or socket that uses it, and the kernel's
//! answer. The link and AF_XDP probes need an interface, so they run on the
//! loopback device of a private network namespace that a short-lived thread
//! creates (the host's interfaces are never touched).
//!
//! `FLOWSCOPE_PROBE_ASSUME=feature=yes|no,…` replaces an answer, so tests can
//! drive the paths of another kernel (e.g. `xdp_meta=yes` where the kernel
//! refuses the helper, to see the load error it gives).

use std::fmt;

use super::{
    RingSizes,
    bpf_sys::{self, EXIT, call, helper, mov64_imm},
    netlink,
    socket::QueueSockets,
};

/// One probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The kernel offers it.
    Yes,
    /// The kernel refused it; why, in its words.
    No(String),
    /// The probe could not ask (e.g. no network namespace); why.
    Unknown(String),
}

impl Answer {
    /// True for [`Answer::Yes`].
    pub fn is_yes(&self) -> bool {
        matches!(self, Self::Yes)
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yes => f.write_str("yes"),
            Self::No(why) => write!(f, "no ({why})"),
            Self::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// A probed feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `bpf_xdp_adjust_meta` in XDP programs: the metadata block.
    XdpMeta,
    /// BPF links for XDP (`BPF_LINK_CREATE` with `BPF_XDP`, Linux 5.9).
    XdpLink,
    /// `bpf_redirect_map` into an XSKMAP taking its fallback action from the
    /// flags when the slot is empty.
    RedirectFallback,
    /// AF_XDP `XDP_USE_NEED_WAKEUP` (Linux 5.4).
    NeedWakeup,
    /// Several AF_XDP sockets on one UMEM (`XDP_SHARED_UMEM`).
    SharedUmem,
}

impl Feature {
    /// Every feature, in report order.
    pub const ALL: [Feature; 5] = [
        Self::XdpMeta,
        Self::XdpLink,
        Self::RedirectFallback,
        Self::NeedWakeup,
        Self::SharedUmem,
    ];

    /// Short name, as `FLOWSCOPE_PROBE_ASSUME` takes it.
    pub fn key(self) -> &'static str {
        match self {
            Self::XdpMeta => "xdp_meta",
            Self::XdpLink => "xdp_link",
            Self::RedirectFallback => "redirect_fallback",
            Self::NeedWakeup => "need_wakeup",
            Self::SharedUmem => "shared_umem",
        }
    }

    /// What it is, for reports.
    pub fn what(self) -> &'static str {
        match self {
            Self::XdpMeta => "bpf_xdp_adjust_meta in XDP (metadata block)",
            Self::XdpLink => "BPF links for XDP",
            Self::RedirectFallback => "XSKMAP redirect with a fallback action",
            Self::NeedWakeup => "AF_XDP need-wakeup",
            Self::SharedUmem => "AF_XDP shared UMEM",
        }
    }

    /// What flowscope does without it, and what that costs.
    pub fn cost_when_missing(self) -> &'static str {
        match self {
            Self::XdpMeta => {
                "metadata off: workers parse each frame's L2-L4 headers again (same results, \
                 some ns per frame; --no-xdp-meta forces this)"
            }
            Self::XdpLink => {
                "attached through netlink: a kill -9 leaves the program attached until the \
                 next start replaces it (or `ip link set dev IFACE xdp off`)"
            }
            Self::RedirectFallback => {
                "a frame whose socket is missing is dropped by the kernel instead of passed \
                 to the stack and counted as pass_fallback"
            }
            Self::NeedWakeup => {
                "zero-copy drivers poll the fill ring all the time (a busier softirq core); \
                 copy mode is unaffected"
            }
            Self::SharedUmem => "one socket per RX queue only (--sockets-per-queue 1)",
        }
    }
}

/// Every probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    answers: [Answer; 5],
}

impl KernelFeatures {
    /// Probes this kernel, then applies `FLOWSCOPE_PROBE_ASSUME`.
    pub fn probe() -> Self {
        let mut f = Self::probe_kernel();
        if let Ok(assume) = std::env::var("FLOWSCOPE_PROBE_ASSUME") {
            f.assume(&assume);
        }
        f
    }

    /// The kernel's own answers (needs CAP_BPF/CAP_NET_ADMIN to get them; a
    /// network namespace for the interface probes).
    pub fn probe_kernel() -> Self {
        let (link, wakeup, shared) = in_private_netns(netns_probes).unwrap_or_else(|why| {
            let u = || Answer::Unknown(why.clone());
            (u(), u(), u())
        });
        Self {
            answers: [
                probe_xdp_meta(),
                link,
                probe_redirect_fallback(),
                wakeup,
                shared,
            ],
        }
    }

    /// The answer for `feature`.
    pub fn get(&self, feature: Feature) -> &Answer {
        &self.answers[feature as usize]
    }

    /// Replaces answers from `feature=yes|no,…`; unknown keys are ignored.
    pub fn assume(&mut self, spec: &str) {
        for (key, value) in spec.split(',').filter_map(|kv| kv.trim().split_once('=')) {
            if let Some(f) = Feature::ALL.iter().find(|f| f.key() == key) {
                self.answers[*f as usize] = match value {
                    "yes" => Answer::Yes,
                    _ => Answer::No("assumed through FLOWSCOPE_PROBE_ASSUME".into()),
                };
            }
        }
    }

    /// The features whose probe could not ask, other than the metadata
    /// helper (the metadata's own words say that one), with why: `a, b (why)`
    /// per reason. Capture then tries each and falls back if refused.
    pub fn unprobed(&self) -> Option<String> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in Feature::ALL.iter().filter(|f| **f != Feature::XdpMeta) {
            if let Answer::Unknown(why) = self.get(*f) {
                match groups.iter_mut().find(|(w, _)| w == why) {
                    Some((_, keys)) => keys.push(f.key()),
                    None => groups.push((why, vec![f.key()])),
                }
            }
        }
        (!groups.is_empty()).then(|| {
            groups
                .iter()
                .map(|(why, keys)| format!("{} ({why})", keys.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// One line per feature: what it is, the answer, and the cost when no.
    pub fn report(&self) -> Vec<String> {
        Feature::ALL
            .iter()
            .map(|f| {
                let a = self.get(*f);
                if a.is_yes() {
                    format!("{}: yes", f.what())
                } else {
                    format!("{}: {a} -> {}", f.what(), f.cost_when_missing())
                }
            })
            .collect()
    }
}

/// The unsupported-helper diagnostics of the verifier (libbpf looks for the
/// same ones).
const REFUSED_HELPER: [&str; 3] = [
    "program of this type cannot use helper",
    "unknown func",
    "invalid func",
];

/// The line of a verifier log that says a helper was refused, if any.
pub fn refused_helper_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| REFUSED_HELPER.iter().any(|d| l.contains(d)))
        .map(str::trim)
}

/// `bpf_xdp_adjust_meta(ctx, 0)` in an XDP program.
fn probe_xdp_meta() -> Answer {
    let insns = bpf_sys::only_calling(helper::XDP_ADJUST_META, 2);
    match bpf_sys::prog_load(bpf_sys::PROG_TYPE_XDP, &insns, "fs_probe_meta") {
        Ok(_) => Answer::Yes,
        Err(r) => match refused_helper_line(&r.log) {
            Some(line) => Answer::No(format!("the kernel refused it: {line}")),
            None => Answer::Unknown(format!("probe program not loaded: {}", r.error)),
        },
    }
}

/// `bpf_redirect_map(xskmap, 0, XDP_PASS)` on an empty slot, run once: the
/// fallback works when it returns `XDP_PASS`.
fn probe_redirect_fallback() -> Answer {
    const XDP_PASS: u32 = 2;
    let map = match bpf_sys::map_create(bpf_sys::MAP_TYPE_XSKMAP, 4, 4, 1) {
        Ok(m) => m,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            return Answer::Unknown(format!("no XSKMAP: {e}"));
        }
        Err(e) => return Answer::No(format!("no XSKMAP: {e}")),
    };
    use std::os::fd::AsFd;
    let [ld0, ld1] = bpf_sys::ld_map_fd(1, map.as_fd());
    let insns = [
        ld0,
        ld1,
        mov64_imm(2, 0),
        mov64_imm(3, XDP_PASS as i32),
        call(helper::REDIRECT_MAP),
        EXIT,
    ];
    let prog = match bpf_sys::prog_load(bpf_sys::PROG_TYPE_XDP, &insns, "fs_probe_redir") {
        Ok(p) => p,
        Err(r) => {
            return Answer::Unknown(format!("probe program not loaded: {}", r.error));
        }
    };
    match bpf_sys::test_run(prog.as_fd(), &[0u8; 64], 1) {
        Ok((XDP_PASS, _)) => Answer::Yes,
        Ok((other, _)) => Answer::No(format!("an empty slot gave action {other}, not XDP_PASS")),
        Err(e) => Answer::Unknown(format!("BPF_PROG_TEST_RUN: {e}")),
    }
}

/// Runs `f` on a thread of its own in a new network namespace, which
/// disappears with the thread.
fn in_private_netns<T: Send + 'static>(f: fn() -> T) -> Result<T, String> {
    std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let e = std::io::Error::last_os_error();
            let needs = if e.raw_os_error() == Some(libc::EPERM) {
                " (unshare needs CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(format!(
                "no private network namespace to probe in{needs}: {e}"
            ));
        }
        Ok(f())
    })
    .join()
    .map_err(|_| "the probe thread panicked".to_owned())?
}

/// On the namespace's loopback: an XDP link, and two AF_XDP sockets on one
/// UMEM with need-wakeup.
fn netns_probes() -> (Answer, Answer, Answer) {
    // SAFETY: a valid NUL-terminated name.
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    let link = probe_xdp_link(lo);
    let rings = RingSizes {
        rx_ring: 64,
        fill_ring: 64,
        frame_size: 4096,
        batch: 64,
    };
    let (wakeup, shared) = match QueueSockets::create("lo", 0, 2, &rings, true) {
        Ok(_) => (Answer::Yes, Answer::Yes),
        Err(with_wakeup) => match QueueSockets::create("lo", 0, 2, &rings, false) {
            Ok(_) => (
                Answer::No(format!("bind with XDP_USE_NEED_WAKEUP: {with_wakeup}")),
                Answer::Yes,
            ),
            Err(e) => match QueueSockets::create("lo", 0, 1, &rings, false) {
                Ok(_) => (
                    Answer::Unknown("untested without shared UMEM".into()),
                    Answer::No(format!("{e}")),
                ),
                Err(e) => {
                    let u = || Answer::Unknown(format!("no AF_XDP socket: {e}"));
                    (u(), u())
                }
            },
        },
    };
    (link, wakeup, shared)
}

/// A trivial XDP program linked to `ifindex` in generic mode.
fn probe_xdp_link(ifindex: u32) -> Answer {
    use std::os::fd::AsFd;
    let prog = match bpf_sys::prog_load(
        bpf_sys::PROG_TYPE_XDP,
        &[mov64_imm(0, 2), EXIT],
        "fs_probe_link",
    ) {
        Ok(p) => p,
        Err(r) => return Answer::Unknown(format!("probe program not loaded: {}", r.error)),
    };
    match bpf_sys::xdp_link_create(prog.as_fd(), ifindex, netlink::XDP_FLAGS_SKB_MODE) {
        Ok(_) => Answer::Yes,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Answer::No(format!("BPF_LINK_CREATE for XDP: {e}"))
        }
        Err(e) => Answer::Unknown(format!("BPF_LINK_CREATE for XDP: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_helper_line_is_found_in_a_long_log() {
        let log = "0: R1=ctx() R10=fp0\n; asm\n1: (85) call bpf_xdp_adjust_meta#54\n\
                   program of this type cannot use helper bpf_xdp_adjust_meta#54\n\
                   processed 2 insns\n";
        assert_eq!(
            refused_helper_line(log),
            Some("program of this type cannot use helper bpf_xdp_adjust_meta#54")
        );
        assert_eq!(refused_helper_line("R1 !read_ok\n"), None);
    }

    #[test]
    fn assumptions_replace_answers() {
        let mut f = KernelFeatures {
            answers: std::array::from_fn(|_| Answer::Yes),
        };
        f.assume("xdp_meta=no, xdp_link=no,bogus=yes");
        assert!(!f.get(Feature::XdpMeta).is_yes());
        assert!(!f.get(Feature::XdpLink).is_yes());
        assert!(f.get(Feature::SharedUmem).is_yes());
        f.assume("xdp_meta=yes");
        assert!(f.get(Feature::XdpMeta).is_yes());
        assert_eq!(f.unprobed(), None);
        f.answers[Feature::XdpMeta as usize] = Answer::Unknown("a".into());
        f.answers[Feature::XdpLink as usize] = Answer::Unknown("a".into());
        f.answers[Feature::NeedWakeup as usize] = Answer::Unknown("b".into());
        f.answers[Feature::SharedUmem as usize] = Answer::Unknown("a".into());
        assert_eq!(
            f.unprobed().as_deref(),
            Some("xdp_link, shared_umem (a); need_wakeup (b)")
        );
        let report = f.report();
        assert_eq!(report.len(), Feature::ALL.len());
        assert!(report[1].contains("netlink"), "{}", report[1]);
    }
}
