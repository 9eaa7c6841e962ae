//! Running the loaded XDP program on one frame with `BPF_PROG_TEST_RUN`.

use std::sync::OnceLock;

use aya::programs::{TestRun, TestRunOptions};
use flowscope::capture::{Answer, Datapath, Feature, KernelFeatures};
use flowscope_common::{XdpConfig, XdpMeta, meta::Parsed};

/// What one run of the program gave.
pub struct Run {
    /// The program's verdict.
    pub action: u32,
    /// The metadata block written in front of the frame (`None` when the
    /// program wrote none: count-only mode, or metadata off).
    pub written: Option<XdpMeta>,
    /// What the program parsed, read back from its per-CPU `COUNTERS` map:
    /// available on every kernel, with or without the metadata block.
    pub parsed: Parsed,
}

/// This kernel's answers (probed once per test binary).
pub fn features() -> &'static KernelFeatures {
    static F: OnceLock<KernelFeatures> = OnceLock::new();
    F.get_or_init(KernelFeatures::probe)
}

/// Loads the program with the metadata block on where the kernel allows
/// `bpf_xdp_adjust_meta`, off where it refuses it.
pub fn load(config: XdpConfig) -> Datapath {
    Datapath::load_detached(config, features().get(Feature::XdpMeta).is_yes(), None)
        .expect("the XDP program loads and passes the verifier")
}

/// For tests of the metadata block itself: true where this kernel writes
/// it; elsewhere a loud SKIPPED line with the kernel's reason.
pub fn metadata_block_enabled(test: &str) -> bool {
    match features().get(Feature::XdpMeta) {
        Answer::Yes => true,
        other => {
            super::skipped(
                test,
                &format!(
                    "tests the XDP metadata block, which this kernel does not allow: \
                     bpf_xdp_adjust_meta {other}"
                ),
            );
            false
        }
    }
}

/// Pins the calling thread to the CPU it runs on (once); that CPU. The
/// program's per-CPU state that the thread's frames meet is then one CPU's:
/// the `COUNTERS` value read after a test run is the one the run wrote, and
/// frames a thread sends through a veth pair meet one fragment table, as a
/// NIC queue's frames do on the one CPU its interrupt is bound to.
pub fn pinned_cpu() -> usize {
    thread_local! {
        static CPU: usize = {
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize;
            // SAFETY: a zeroed cpu_set_t with one bit set, passed with its size.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                    0,
                    "pin the test thread to CPU {cpu}"
                );
            }
            cpu
        };
    }
    CPU.with(|c| *c)
}

/// Runs the program once on `frame`: its verdict, the metadata block it
/// wrote in front of the frame, and what it parsed. The kernel copies
/// `data_out` from `data_meta`: metadata, then the frame, which the program
/// must leave unchanged. Where a block was written it must equal the parse
/// result.
pub fn test_run(dp: &mut Datapath, frame: &[u8]) -> Run {
    let cpu = pinned_cpu();
    let mut out = vec![0u8; frame.len() + 512];
    let res = dp
        .program()
        .unwrap()
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    let size = res.data_size_out as usize;
    let written = (size == frame.len() + XdpMeta::SIZE).then(|| {
        assert_eq!(
            &out[XdpMeta::SIZE..size],
            frame,
            "the program must not change the frame"
        );
        XdpMeta::from_bytes(out[..XdpMeta::SIZE].try_into().unwrap())
    });
    if written.is_none() {
        assert_eq!(&out[..size], frame, "the program must not change the frame");
    }
    let parsed = dp.parsed_on(cpu).expect("read back the parse result");
    if let Some(w) = written {
        assert_eq!(w, parsed.meta, "the block written is the parse result");
    }
    Run {
        action: res.return_value,
        written,
        parsed,
    }
}
