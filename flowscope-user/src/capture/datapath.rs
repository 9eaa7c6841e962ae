//! The XDP program: load the embedded object, configure, attach, read counters.

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::PathBuf,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp},
};
use flowscope_common::{
    CounterBlock, XdpConfig,
    anomaly::{AnomalyBlock, PairFilter, SKETCH_SRC_PORTS, SKETCH_SYN_DST, Sketch},
    config::{
        ACCEPTED_PROGRAM_NAME, COUNTERS_MAP, FILTER_JUMP_MAP, FILTER_ON_GLOBAL, HASH_SEED_GLOBAL,
        JUMP_ACCEPTED, MODE_GLOBAL, PAIR_FILTER_MAP, PROGRAM_NAME, SKETCHES_MAP,
        SOCKETS_PER_QUEUE_GLOBAL, XDP_META_GLOBAL, XSKS_MAP,
    },
    counters::CpuBlock,
    meta::Parsed,
};

use super::{
    CaptureError, bpf_sys, netlink, probe,
    xdp_filter::{FilterMaps, FilterSpec, XdpFilter, set_jump},
};

/// The XDP object built by `cargo xtask build` (empty in a plain cargo build).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowscope.bpf.o"));

/// How the program is attached. Never changed silently: a mode the interface
/// does not offer is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// Native XDP in the driver (`drv`).
    Driver,
    /// Generic XDP in the stack (`skb`), about ten times slower.
    Skb,
}

impl XdpAttachMode {
    /// `drv` or `skb`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Driver => "drv",
            Self::Skb => "skb",
        }
    }

    fn flags(self) -> u32 {
        match self {
            Self::Driver => netlink::XDP_FLAGS_DRV_MODE,
            Self::Skb => netlink::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// How the program is attached to its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachKind {
    /// A BPF link (Linux 5.9): the kernel detaches it when the process dies.
    Link,
    /// rtnetlink `IFLA_XDP`: stays attached after a `kill -9` until the next
    /// start replaces it.
    Netlink,
}

impl AttachKind {
    /// `link` or `netlink`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Netlink => "netlink",
        }
    }
}

/// Which attachment to use: the best the kernel offers, or a forced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachPolicy {
    /// A BPF link where the kernel has them, else netlink.
    Auto,
    /// Only a BPF link.
    Link,
    /// Only netlink.
    Netlink,
}

impl std::str::FromStr for AttachPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "link" => Ok(Self::Link),
            "netlink" => Ok(Self::Netlink),
            other => Err(format!(
                "unknown attach {other:?}: use auto, link or netlink"
            )),
        }
    }
}

/// An attached program; dropping it detaches.
enum Attachment {
    /// The link, held: closing its descriptor detaches.
    Link { _fd: OwnedFd },
    /// Detached through netlink, only if it is still our program.
    Netlink {
        ifindex: u32,
        mode_flags: u32,
        prog_fd: i32,
    },
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Self::Netlink {
            ifindex,
            mode_flags,
            prog_fd,
        } = *self
        {
            // Kernels before 5.7 have no XDP_FLAGS_REPLACE: detach plainly.
            if netlink::set_xdp_fd(ifindex, -1, mode_flags, Some(prog_fd)).is_err() {
                let _ = netlink::set_xdp_fd(ifindex, -1, mode_flags, None);
            }
        }
    }
}

impl std::str::FromStr for XdpAttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drv" | "driver" | "native" => Ok(Self::Driver),
            "skb" | "generic" => Ok(Self::Skb),
            other => Err(format!("unknown XDP mode {other:?}: use drv or skb")),
        }
    }
}

/// The loaded program and its maps. Dropping it detaches the program.
pub struct Datapath {
    /// First, so it is dropped (detached) while the program is still loaded.
    attachment: Option<Attachment>,
    ebpf: Ebpf,
    iface: String,
    mode: XdpAttachMode,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, CpuBlock>,
    sketches: PerCpuArray<MapData, Sketch>,
    pair_filter: PerCpuArray<MapData, PairFilter>,
    metadata: bool,
    /// The filter program, in slot 0 of `FILTER_JUMP` (which `ebpf` keeps
    /// open: the kernel empties a program array when its last descriptor
    /// closes).
    filter: Option<XdpFilter>,
}

/// The two sketches of one interval, per CPU (merged by `crate::anomaly`).
pub struct SketchSnapshot {
    /// SYN destinations, one sketch per CPU.
    pub syn_dst: Vec<Sketch>,
    /// Distinct destination ports per source, one sketch per CPU.
    pub src_ports: Vec<Sketch>,
}

impl Datapath {
    /// Loads the embedded object (verifier included) for interface `iface`
    /// and writes its config; `metadata` switches the metadata block on;
    /// `filter` translates and loads a filter expression the program
    /// tail-calls after counting each frame.
    ///
    /// # Errors
    ///
    /// No object embedded, verifier rejection (one line, the log saved to a
    /// file it names), a filter XDP cannot run, map access.
    pub fn load(
        iface: &str,
        mode: XdpAttachMode,
        config: XdpConfig,
        metadata: bool,
        filter: Option<&FilterSpec>,
    ) -> Result<Self, CaptureError> {
        if OBJECT.is_empty() {
            return Err(CaptureError::NoEbpfObject);
        }
        let on = u32::from(metadata);
        let filter_on = u32::from(filter.is_some());
        let mut ebpf = EbpfLoader::new()
            .override_global(XDP_META_GLOBAL, &on, true)
            .override_global(MODE_GLOBAL, &config.mode, true)
            .override_global(SOCKETS_PER_QUEUE_GLOBAL, &config.sockets_per_queue, true)
            .override_global(HASH_SEED_GLOBAL, &config.hash_seed, true)
            .override_global(FILTER_ON_GLOBAL, &filter_on, true)
            .load(OBJECT)
            .map_err(|e| CaptureError::Load(format!("{e:#}")))?;
        let program: &mut Xdp = program_mut(&mut ebpf, PROGRAM_NAME)?;
        program.load().map_err(refused)?;
        let filter = filter
            .map(|spec| install_filter(&mut ebpf, spec))
            .transpose()?;
        let xsks = XskMap::try_from(take_map(&mut ebpf, XSKS_MAP)?).map_err(map_err(XSKS_MAP))?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, COUNTERS_MAP)?)
            .map_err(map_err(COUNTERS_MAP))?;
        let sketches = PerCpuArray::try_from(take_map(&mut ebpf, SKETCHES_MAP)?)
            .map_err(map_err(SKETCHES_MAP))?;
        let pair_filter = PerCpuArray::try_from(take_map(&mut ebpf, PAIR_FILTER_MAP)?)
            .map_err(map_err(PAIR_FILTER_MAP))?;
        Ok(Self {
            ebpf,
            iface: iface.to_owned(),
            mode,
            xsks,
            counters,
            sketches,
            pair_filter,
            metadata,
            filter,
            attachment: None,
        })
    }

    /// The embedded object, for tests that run the program with
    /// `BPF_PROG_TEST_RUN`; empty when built without it.
    pub fn object() -> &'static [u8] {
        OBJECT
    }

    /// Whether the program writes the metadata block.
    pub fn metadata(&self) -> bool {
        self.metadata
    }

    /// Puts the AF_XDP socket `fd` in XSKMAP slot `slot`.
    ///
    /// # Errors
    ///
    /// The map update failed.
    pub fn insert_socket(&mut self, slot: u32, fd: i32) -> Result<(), CaptureError> {
        self.xsks.set(slot, fd, 0).map_err(map_err(XSKS_MAP))
    }

    /// Attaches the program as `kind` (a refused link falls back to netlink
    /// when `fallback`): how it is attached, and the id of a program of ours
    /// that a killed flowscope had left attached through netlink, now
    /// replaced. Any other program is left alone and is an error.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Attach`] with the kernel's answer and what to try.
    pub fn attach(
        &mut self,
        kind: AttachKind,
        fallback: bool,
    ) -> Result<(AttachKind, Option<u32>), CaptureError> {
        let (iface, mode) = (self.iface.clone(), self.mode);
        let fail = |reason: String, hint: &'static str| CaptureError::Attach {
            iface: iface.clone(),
            mode: mode.label(),
            reason,
            hint,
        };
        let cname = std::ffi::CString::new(iface.as_str())
            .map_err(|_| CaptureError::NoSuchInterface(iface.clone()))?;
        // SAFETY: a valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(CaptureError::NoSuchInterface(iface.clone()));
        }
        let replaced = remove_stale(ifindex).map_err(|(reason, hint)| fail(reason, hint))?;
        let program = program_mut(&mut self.ebpf, PROGRAM_NAME)?;
        let prog_fd = program
            .fd()
            .map_err(|e| CaptureError::Load(format!("{e:#}")))?
            .as_fd();
        let by_netlink = || {
            netlink::set_xdp_fd(ifindex, prog_fd.as_raw_fd(), mode.flags(), None).map(|()| {
                Attachment::Netlink {
                    ifindex,
                    mode_flags: mode.flags(),
                    prog_fd: prog_fd.as_raw_fd(),
                }
            })
        };
        let attachment = match kind {
            AttachKind::Link => match bpf_sys::xdp_link_create(prog_fd, ifindex, mode.flags()) {
                Ok(fd) => Ok(Attachment::Link { _fd: fd }),
                Err(e) if fallback && e.raw_os_error() == Some(libc::EINVAL) => by_netlink(),
                Err(e) => Err(e),
            },
            AttachKind::Netlink => by_netlink(),
        }
        .map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) | Some(libc::EEXIST) => {
                    "another XDP program is attached to it; see `ip link show`"
                }
                _ if mode == XdpAttachMode::Driver => {
                    "the driver may not support native XDP: try --xdp-mode skb"
                }
                _ => "check `cargo xtask doctor`",
            };
            fail(format!("{} attach: {e}", kind.label()), hint)
        })?;
        let kind = match attachment {
            Attachment::Link { .. } => AttachKind::Link,
            Attachment::Netlink { .. } => AttachKind::Netlink,
        };
        self.attachment = Some(attachment);
        Ok((kind, replaced))
    }

    /// Detaches the program: frames stop being redirected (the sockets keep
    /// what they already hold); maps stay readable. Idempotent.
    pub fn detach(&mut self) {
        self.attachment = None;
    }

    /// Class counters summed over every CPU (one per-CPU map lookup; the
    /// program counts frames by kind, see
    /// [`flowscope_common::counters::KindBlock::add_classes`]).
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn counters(&self) -> Result<CounterBlock, CaptureError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(COUNTERS_MAP))?;
        let mut sum = CounterBlock::default();
        for block in per_cpu.iter() {
            block.counts.add_classes(&mut sum);
        }
        Ok(sum)
    }

    /// Anomaly and indicator counters summed over every CPU (one lookup).
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn anomalies(&self) -> Result<AnomalyBlock, CaptureError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(COUNTERS_MAP))?;
        let mut sum = AnomalyBlock::default();
        for block in per_cpu.iter() {
            sum.add(&block.anomalies);
        }
        Ok(sum)
    }

    /// Reads both sketches of every CPU, then clears them and the pair
    /// filter for the next interval. Frames counted between the read and the
    /// clear are lost to the sketches (never to the counters): the sketches
    /// rank offenders, they do not account.
    ///
    /// # Errors
    ///
    /// A map read or write failed.
    pub fn take_sketches(&mut self) -> Result<SketchSnapshot, CaptureError> {
        let read = |i: u32| -> Result<Vec<Sketch>, CaptureError> {
            Ok(self
                .sketches
                .get(&i, 0)
                .map_err(map_err(SKETCHES_MAP))?
                .iter()
                .copied()
                .collect())
        };
        let snap = SketchSnapshot {
            syn_dst: read(SKETCH_SYN_DST)?,
            src_ports: read(SKETCH_SRC_PORTS)?,
        };
        let cpus = snap.syn_dst.len();
        for i in [SKETCH_SYN_DST, SKETCH_SRC_PORTS] {
            let zero =
                aya::maps::PerCpuValues::try_from(vec![Sketch::default(); cpus]).map_err(|e| {
                    CaptureError::Map {
                        map: SKETCHES_MAP,
                        reason: e.to_string(),
                    }
                })?;
            self.sketches
                .set(i, zero, 0)
                .map_err(map_err(SKETCHES_MAP))?;
        }
        let zero =
            aya::maps::PerCpuValues::try_from(vec![PairFilter::default(); cpus]).map_err(|e| {
                CaptureError::Map {
                    map: PAIR_FILTER_MAP,
                    reason: e.to_string(),
                }
            })?;
        self.pair_filter
            .set(0, zero, 0)
            .map_err(map_err(PAIR_FILTER_MAP))?;
        Ok(snap)
    }

    /// The loaded program, for `BPF_PROG_TEST_RUN`.
    ///
    /// # Errors
    ///
    /// The object has no program of the expected name.
    pub fn program(&mut self) -> Result<&mut Xdp, CaptureError> {
        program_mut(&mut self.ebpf, PROGRAM_NAME)
    }

    /// Loads the embedded object without attaching it (for test runs).
    ///
    /// # Errors
    ///
    /// As [`Datapath::load`].
    pub fn load_detached(
        config: XdpConfig,
        metadata: bool,
        filter: Option<&FilterSpec>,
    ) -> Result<Self, CaptureError> {
        Self::load("", XdpAttachMode::Driver, config, metadata, filter)
    }

    /// Whether a filter program runs after counting.
    pub fn filtered(&self) -> bool {
        self.filter.is_some()
    }

    /// What the program parsed of the last frame it ran on, on CPU `cpu`
    /// (for `BPF_PROG_TEST_RUN` on a pinned CPU).
    ///
    /// # Errors
    ///
    /// The map read failed, or there is no such CPU.
    pub fn parsed_on(&self, cpu: usize) -> Result<Parsed, CaptureError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(COUNTERS_MAP))?;
        per_cpu.get(cpu).map(|b| b.parsed).ok_or(CaptureError::Map {
            map: COUNTERS_MAP,
            reason: format!("no CPU {cpu}"),
        })
    }

    /// The helper calls of the loaded program after verification (dead
    /// branches removed), as [`bpf_sys::helper_calls`] gives them.
    ///
    /// # Errors
    ///
    /// The program info query failed.
    pub fn helper_calls(&mut self) -> Result<Vec<i32>, CaptureError> {
        Ok(bpf_sys::helper_calls(&self.xlated()?).collect())
    }

    /// The tail calls left in the loaded program after verification (none
    /// when no filter runs: the branch is removed).
    ///
    /// # Errors
    ///
    /// The program info query failed.
    pub fn tail_calls(&mut self) -> Result<usize, CaptureError> {
        Ok(bpf_sys::tail_calls(&self.xlated()?))
    }

    fn xlated(&mut self) -> Result<Vec<u64>, CaptureError> {
        let program = program_mut(&mut self.ebpf, PROGRAM_NAME)?;
        let fd = program
            .fd()
            .map_err(|e| CaptureError::Load(format!("{e:#}")))?;
        bpf_sys::xlated_insns(fd.as_fd())
            .map_err(|e| CaptureError::Load(format!("BPF_OBJ_GET_INFO_BY_FD: {e}")))
    }
}

/// Detaches a program of ours left attached to `ifindex` by a flowscope that
/// died without detaching (netlink mode, `kill -9`): its id. Leaves any
/// other program alone: (why, what to try).
fn remove_stale(ifindex: u32) -> Result<Option<u32>, (String, &'static str)> {
    let Some(found) = netlink::attached(ifindex).map_err(|e| {
        (
            format!("rtnetlink query: {e}"),
            "check `cargo xtask doctor`",
        )
    })?
    else {
        return Ok(None);
    };
    // Listing programs needs CAP_SYS_ADMIN: without it, whose program this
    // is cannot be told, and it is left alone.
    let name = match aya::programs::loaded_programs().find(|p| match p {
        Ok(p) => p.id() == found.prog_id,
        Err(_) => true,
    }) {
        Some(Ok(p)) => p.name_as_str().map(str::to_owned).unwrap_or_default(),
        Some(Err(e)) => {
            return Err((
                format!(
                    "XDP program id {} is already attached and whose it is cannot be read ({e})",
                    found.prog_id
                ),
                "flowscope replaces only its own programs and needs CAP_SYS_ADMIN to tell them; \
                 if it is a stale one of flowscope's, remove it with `ip link set dev IFACE xdp off`",
            ));
        }
        None => String::new(),
    };
    if name != PROGRAM_NAME {
        return Err((
            format!(
                "XDP program {:?} (id {}) is already attached",
                name, found.prog_id
            ),
            "flowscope replaces only its own programs: remove it with `ip link set dev IFACE xdp off` or capture elsewhere",
        ));
    }
    if let Some(pid) = holder_of(found.prog_id) {
        return Err((
            format!(
                "flowscope program id {} is attached and in use by process {pid}",
                found.prog_id
            ),
            "another flowscope is capturing here; stop it first",
        ));
    }
    match netlink::set_xdp_fd(ifindex, -1, found.mode_flags, None) {
        Ok(()) => Ok(Some(found.prog_id)),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err((
            format!(
                "flowscope program id {} is attached through a BPF link",
                found.prog_id
            ),
            "another flowscope is capturing here; stop it first",
        )),
        Err(e) => Err((
            format!("removing stale flowscope program id {}: {e}", found.prog_id),
            "remove it with `ip link set dev IFACE xdp off`",
        )),
    }
}

/// A process (other than us) holding a descriptor of program `prog_id`, from
/// `/proc/*/fdinfo` (`prog_id:` lines, as bpftool reads them).
fn holder_of(prog_id: u32) -> Option<u32> {
    let me = std::process::id();
    let needle = format!("prog_id:\t{prog_id}\n");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            if pid == me {
                return None;
            }
            let fdinfo = std::fs::read_dir(entry.path().join("fdinfo")).ok()?;
            fdinfo
                .flatten()
                .any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains(&needle)))
                .then_some(pid)
        })
}

/// One-line error for a program the kernel would not load; the verifier log
/// goes to a file the line names.
fn refused(e: ProgramError) -> CaptureError {
    match &e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => CaptureError::from_verifier(io_error, &format!("{verifier_log:?}")),
        _ => CaptureError::Load(format!("{e:#}")),
    }
}

impl CaptureError {
    /// The one-line error for a `BPF_PROG_LOAD` that failed with `io_error`
    /// and verifier log `log`: what was refused and what to try; the log is
    /// saved to a file the line names.
    pub fn from_verifier(io_error: &std::io::Error, log: &str) -> Self {
        let saved = save_verifier_log(log);
        let (what, hint) = match probe::refused_helper_line(log) {
            Some(line) => (
                format!("the kernel refused a helper ({line})"),
                "run `cargo xtask doctor` to see what this kernel offers; for bpf_xdp_adjust_meta use --no-xdp-meta",
            ),
            None if log.trim().is_empty() => (
                format!("bpf(BPF_PROG_LOAD): {io_error}"),
                "run as root (CAP_BPF + CAP_NET_ADMIN); see `cargo xtask doctor`",
            ),
            None => (
                format!(
                    "the verifier rejected it ({})",
                    log.lines()
                        .rev()
                        .map(str::trim)
                        .find(|l| !l.is_empty() && !is_verifier_statistics(l))
                        .unwrap_or_default()
                ),
                "this kernel's verifier differs from the tested ones (README: supported kernels)",
            ),
        };
        CaptureError::Verifier {
            what,
            hint,
            log: saved,
        }
    }
}

/// The summary lines a verifier log ends with, after the reason.
fn is_verifier_statistics(line: &str) -> bool {
    ["processed ", "verification time", "stack depth"]
        .iter()
        .any(|s| line.starts_with(s))
}

/// Writes the verifier log to `$RUNTIME_DIRECTORY` (systemd) or the
/// temporary directory: its path, or why it could not be written.
pub(super) fn save_verifier_log(log: &str) -> Result<PathBuf, String> {
    let dir = std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("flowscope-verifier-{}.log", std::process::id()));
    std::fs::write(&path, log)
        .map(|()| path.clone())
        .map_err(|e| format!("not saved to {}: {e}", path.display()))
}

fn program_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, CaptureError> {
    ebpf.program_mut(name)
        .ok_or_else(|| CaptureError::Load(format!("no program {name:?} in the object")))?
        .try_into()
        .map_err(|e| CaptureError::Load(format!("{e:#}")))
}

/// Loads `flowscope_accepted` and the filter program of `spec`, and puts
/// them in the object's program array: the filter in the slot the main
/// program tail-calls, `flowscope_accepted` in the one the filter does.
fn install_filter(ebpf: &mut Ebpf, spec: &FilterSpec) -> Result<XdpFilter, CaptureError> {
    let accepted = program_mut(ebpf, ACCEPTED_PROGRAM_NAME)?;
    accepted.load().map_err(refused)?;
    let accepted = accepted
        .fd()
        .and_then(|fd| fd.try_clone().map_err(Into::into))
        .map_err(|e| CaptureError::Load(format!("{e:#}")))?;
    let fd_of = |name: &'static str| match ebpf.map(name) {
        Some(aya::maps::Map::PerCpuArray(m) | aya::maps::Map::ProgramArray(m)) => {
            Ok(m.fd().as_fd())
        }
        _ => Err(CaptureError::Map {
            map: name,
            reason: "missing from the object".into(),
        }),
    };
    let maps = FilterMaps {
        counters: fd_of(COUNTERS_MAP)?,
        jump: fd_of(FILTER_JUMP_MAP)?,
    };
    let filter = XdpFilter::load(&spec.filter, maps, spec.action)?;
    set_jump(maps.jump, JUMP_ACCEPTED, accepted.as_fd())?;
    filter.install(maps.jump)?;
    Ok(filter)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, CaptureError> {
    ebpf.take_map(name).ok_or(CaptureError::Map {
        map: name,
        reason: "missing from the object".into(),
    })
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> CaptureError {
    move |e| CaptureError::Map {
        map,
        reason: format!("{e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_names_the_reason_not_the_statistics() {
        let log = "0: R1=ctx() R10=fp0\n12: (61) r2 = *(u32 *)(r1 +2)\n\
                   misaligned packet access off 14+0+2 size 4\n\
                   processed 88 insns (limit 1000000) max_states_per_insn 0 total_states 4\n";
        let e = CaptureError::from_verifier(&std::io::Error::from_raw_os_error(libc::EACCES), log);
        let text = e.to_string();
        assert!(
            text.contains("the verifier rejected it (misaligned packet access off 14+0+2 size 4)"),
            "{text}"
        );
        let CaptureError::Verifier { log: Ok(path), .. } = e else {
            panic!("log not saved: {text}");
        };
        assert_eq!(std::fs::read_to_string(&path).unwrap(), log);
        let _ = std::fs::remove_file(path);
    }
}
