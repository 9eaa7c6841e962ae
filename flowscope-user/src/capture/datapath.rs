//! The XDP program: load the embedded object, configure, attach, read counters.

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, XskMap},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use flowscope_common::{
    CounterBlock, XdpConfig,
    anomaly::{AnomalyBlock, PairFilter, SKETCH_SRC_PORTS, SKETCH_SYN_DST, Sketch},
    config::{
        ANOMALIES_MAP, CONFIG_MAP, COUNTERS_MAP, MODE_COUNT_ONLY, MODE_REDIRECT, PAIR_FILTER_MAP,
        PROGRAM_NAME, SKETCHES_MAP, XSKS_MAP,
    },
};

use super::{CaptureConfig, CaptureError};

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

    fn aya(self) -> XdpMode {
        match self {
            Self::Driver => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
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
    ebpf: Ebpf,
    iface: String,
    mode: XdpAttachMode,
    xsks: XskMap<MapData>,
    counters: PerCpuArray<MapData, CounterBlock>,
    anomalies: PerCpuArray<MapData, AnomalyBlock>,
    sketches: PerCpuArray<MapData, Sketch>,
    pair_filter: PerCpuArray<MapData, PairFilter>,
    link: Option<XdpLinkId>,
}

/// The two sketches of one interval, per CPU (merged by `crate::anomaly`).
pub struct SketchSnapshot {
    /// SYN destinations, one sketch per CPU.
    pub syn_dst: Vec<Sketch>,
    /// Distinct destination ports per source, one sketch per CPU.
    pub src_ports: Vec<Sketch>,
}

impl Datapath {
    /// Loads the embedded object (verifier included) and writes its config.
    ///
    /// # Errors
    ///
    /// No object embedded, verifier rejection, map access.
    pub fn load(cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        Self::load_object(
            OBJECT,
            &cfg.iface,
            cfg.mode,
            XdpConfig {
                mode: if cfg.count_only {
                    MODE_COUNT_ONLY
                } else {
                    MODE_REDIRECT
                },
                sockets_per_queue: cfg.sockets_per_queue,
                hash_seed: cfg.hash_seed,
                _reserved: 0,
            },
        )
    }

    /// The embedded object, for tests that run the program with
    /// `BPF_PROG_TEST_RUN`; empty when built without it.
    pub fn object() -> &'static [u8] {
        OBJECT
    }

    fn load_object(
        object: &[u8],
        iface: &str,
        mode: XdpAttachMode,
        config: XdpConfig,
    ) -> Result<Self, CaptureError> {
        if object.is_empty() {
            return Err(CaptureError::NoEbpfObject);
        }
        let mut ebpf = EbpfLoader::new()
            .load(object)
            .map_err(|e| CaptureError::Load(format!("{e:#}")))?;
        let program: &mut Xdp = program_mut(&mut ebpf)?;
        program
            .load()
            .map_err(|e| CaptureError::Load(verifier_message(&e)))?;
        let mut config_map: Array<_, XdpConfig> =
            Array::try_from(take_map(&mut ebpf, CONFIG_MAP)?).map_err(map_err(CONFIG_MAP))?;
        config_map.set(0, config, 0).map_err(map_err(CONFIG_MAP))?;
        let xsks = XskMap::try_from(take_map(&mut ebpf, XSKS_MAP)?).map_err(map_err(XSKS_MAP))?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, COUNTERS_MAP)?)
            .map_err(map_err(COUNTERS_MAP))?;
        let anomalies = PerCpuArray::try_from(take_map(&mut ebpf, ANOMALIES_MAP)?)
            .map_err(map_err(ANOMALIES_MAP))?;
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
            anomalies,
            sketches,
            pair_filter,
            link: None,
        })
    }

    /// Puts the AF_XDP socket `fd` in XSKMAP slot `slot`.
    ///
    /// # Errors
    ///
    /// The map update failed.
    pub fn insert_socket(&mut self, slot: u32, fd: i32) -> Result<(), CaptureError> {
        self.xsks.set(slot, fd, 0).map_err(map_err(XSKS_MAP))
    }

    /// Attaches the program through a BPF link (it detaches if we die).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Attach`] with the kernel's answer and what to try.
    pub fn attach(&mut self) -> Result<(), CaptureError> {
        let (iface, mode) = (self.iface.clone(), self.mode);
        let program = program_mut(&mut self.ebpf)?;
        let link = program.attach(&iface, mode.aya()).map_err(|e| {
            let reason = format!("{e:#}");
            let hint = if reason.contains("Unknown") || reason.contains("unknown") {
                "check the interface name with `ip link`"
            } else if reason.contains("busy")
                || reason.contains("EBUSY")
                || reason.contains("os error 16")
            {
                "another XDP program (another flowscope?) is attached; see `ip link show`"
            } else if mode == XdpAttachMode::Driver {
                "the driver may not support native XDP: try --xdp-mode skb"
            } else {
                "check `cargo xtask doctor`"
            };
            CaptureError::Attach {
                iface: iface.clone(),
                mode: mode.label(),
                reason,
                hint,
            }
        })?;
        self.link = Some(link);
        Ok(())
    }

    /// Detaches the program: frames stop being redirected (the sockets keep
    /// what they already hold); maps stay readable. Idempotent.
    pub fn detach(&mut self) {
        if let Some(link) = self.link.take()
            && let Ok(program) = program_mut(&mut self.ebpf)
        {
            let _ = program.detach(link);
        }
    }

    /// The mode requested and obtained.
    pub fn mode(&self) -> XdpAttachMode {
        self.mode
    }

    /// Class counters summed over every CPU (one per-CPU map lookup).
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn counters(&self) -> Result<CounterBlock, CaptureError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(COUNTERS_MAP))?;
        let mut sum = CounterBlock::default();
        for block in per_cpu.iter() {
            sum.add(block);
        }
        Ok(sum)
    }

    /// Anomaly and indicator counters summed over every CPU (one lookup).
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn anomalies(&self) -> Result<AnomalyBlock, CaptureError> {
        let per_cpu = self.anomalies.get(&0, 0).map_err(map_err(ANOMALIES_MAP))?;
        let mut sum = AnomalyBlock::default();
        for block in per_cpu.iter() {
            sum.add(block);
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
        program_mut(&mut self.ebpf)
    }

    /// Loads the embedded object without attaching it (for test runs).
    ///
    /// # Errors
    ///
    /// As [`Datapath::load`].
    pub fn load_detached(config: XdpConfig) -> Result<Self, CaptureError> {
        Self::load_object(OBJECT, "", XdpAttachMode::Driver, config)
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, CaptureError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or_else(|| CaptureError::Load(format!("no program {PROGRAM_NAME:?} in the object")))?
        .try_into()
        .map_err(|e| CaptureError::Load(format!("{e:#}")))
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

/// The error with the verifier log, which aya keeps in the error's Display.
fn verifier_message(e: &aya::programs::ProgramError) -> String {
    format!("{e:#}")
}
