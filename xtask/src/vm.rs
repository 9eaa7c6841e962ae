//! The kernel matrix's other kernels: each boots in a QEMU VM (virtme-ng,
//! software emulation) on this machine's own root file system, runs the
//! kernel-test binaries already built on the host as root, and hands their
//! output back through a shared folder, `target/vm/runs/RELEASE/`, which
//! also keeps the VM's console log.

mod guest;
mod image;
mod machine;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::build::TestBinary;
use crate::libtest::Tally;
use crate::{cmd, deps};

/// The test binaries run in the VM, with the tests to run (empty: all):
/// the `BPF_PROG_TEST_RUN` tiers, and the veth/AF_XDP tests whose outcome
/// depends on the kernel (delivery with exact counts, the kernel's drop
/// counters, teardown mid-traffic, the filter expression's program through
/// this kernel's verifier, live records equal to `read`'s: 20 to 35 s in
/// the VM; the package's unit run with only its capabilities). Software
/// emulation is slow, so
/// `kernel_anomaly_pcaps` (each pcap also recounted by tshark: two minutes
/// in the VM), `kernel_flood`, `kernel_runtime` (metrics and records,
/// whose 20 s wait for the traffic an emulated guest under load can miss)
/// and the filter's differential test on every frame (six million test
/// runs; the VM runs it on a sample) run on the host only; the rest takes
/// 2 to 4 minutes in the VM.
const TESTS: &[(&str, &[&str])] = &[
    ("kernel_xdp", &[]),
    ("kernel_meta_hint", &[]),
    ("kernel_anomaly", &[]),
    ("fuzz_corpus", &["xdp_agrees_with_classify_on_frame_corpus"]),
    (
        "kernel_filter",
        &[
            "xdp_filter_decides_as_libpcap_on_a_sample",
            "rejected_frames_are_dropped_with_the_drop_action",
            "a_missing_accept_slot_passes_the_frame_and_counts_it",
            "main_program_counts_every_frame_then_filters",
            "accepted_frames_carry_the_main_programs_parse_result",
        ],
    ),
    ("kernel_e2e", &[]),
    ("kernel_accounting", &[]),
    ("kernel_shutdown", &[]),
    ("kernel_replay", &[]),
    (
        "package",
        &["the_units_command_captures_with_only_the_units_capabilities"],
    ),
];

/// Up in 20 to 45 s; a boot that takes more than this is stuck.
const BOOT_LIMIT: Duration = Duration::from_secs(300);
/// The whole VM run, boot included (2 to 4 minutes).
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// How long the guest may take to power off once every test has finished.
const POWER_OFF_LIMIT: Duration = Duration::from_secs(60);

/// A kernel to boot in the VM.
#[derive(Clone, Debug)]
pub enum Kernel {
    /// Debian's generic 6.1 LTS image (Debian 12), fetched through apt.
    Debian61,
    /// A bzImage with its modules in `../lib/modules/RELEASE` beside it.
    Image(PathBuf),
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kernel::Debian61 => f.write_str("6.1"),
            Kernel::Image(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What ran on one kernel.
pub struct Outcome {
    /// The kernel's release (`6.1.0-57-amd64`).
    pub release: String,
    /// Its tests' counts.
    pub tally: Tally,
}

/// Boots `kernel` and runs [`TESTS`] of `binaries` inside with `env` set,
/// printing each test as `test [RELEASE] binary::test ... ok`. Every
/// problem (no image, no boot, a hang, a crash) counts as a failed test.
pub fn run(kernel: &Kernel, binaries: &[TestBinary], env: &[(&str, &OsStr)]) -> Outcome {
    let image = match kernel {
        Kernel::Debian61 => image::debian_6_1(),
        Kernel::Image(path) => image::given(path),
    };
    let image = match image {
        Ok(image) => image,
        Err(e) => {
            let release = kernel.to_string();
            println!("test [{release}] vm::kernel ... FAILED\n[{release}] vm::kernel: {e:#}");
            return Outcome {
                release,
                tally: Tally::one_failure(),
            };
        }
    };
    let tally = boot_and_test(&image, binaries, env).unwrap_or_else(|e| {
        println!(
            "test [{r}] vm ... FAILED\n[{r}] vm: {e:#}",
            r = image.release
        );
        Tally::one_failure()
    });
    Outcome {
        release: image.release,
        tally,
    }
}

fn boot_and_test(
    image: &image::Image,
    binaries: &[TestBinary],
    env: &[(&str, &OsStr)],
) -> Result<Tally> {
    let vng = deps::vng()?;
    let runs = TESTS
        .iter()
        .map(|&(name, tests)| {
            let b = binaries
                .iter()
                .find(|b| b.name == name)
                .with_context(|| format!("cargo built no test binary `{name}`"))?;
            Ok(guest::Run {
                name: b.name.clone(),
                exe: b.exe.clone(),
                dir: b.dir.clone(),
                tests,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let release = &image.release;
    let results = cmd::target_dir().join("vm/runs").join(release);
    if results.exists() {
        std::fs::remove_dir_all(&results)
            .with_context(|| format!("removing {}", results.display()))?;
    }
    std::fs::create_dir_all(&results)?;
    let script = results.join("guest.sh");
    std::fs::write(&script, guest::script(&results, env, &runs))?;
    let console = results.join("console.log");

    let start = Instant::now();
    let mut vm = machine::Machine::start(&vng, &image.vmlinuz, &results, &script, &console)?;
    let mut tally = Tally::default();
    let mut done = 0;
    let mut up = false;
    let problem = loop {
        // Checked before reading results: what a stopped VM wrote is all there is.
        let stopped = vm.stopped()?;
        if !up && let Some(guest_release) = guest::booted(&results) {
            up = true;
            eprintln!(
                "xtask: [{release}] VM up after {} s (guest kernel {guest_release})",
                start.elapsed().as_secs()
            );
        }
        while let Some(run) = runs.get(done) {
            let Some(rc) = guest::exit_status(&results, &run.name) else {
                break;
            };
            tally.add(&guest::report(release, &results, &run.name, rc));
            done += 1;
        }
        if done == runs.len() {
            break None;
        }
        let elapsed = start.elapsed();
        if stopped {
            break Some(if up {
                "the VM stopped before this binary finished".to_owned()
            } else {
                "the VM stopped without booting".to_owned()
            });
        }
        if !up && elapsed > BOOT_LIMIT {
            break Some(format!(
                "the VM did not boot within {} s",
                BOOT_LIMIT.as_secs()
            ));
        }
        if elapsed > RUN_LIMIT {
            break Some(format!(
                "the VM run did not finish within {} s",
                RUN_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if problem.is_none() {
        let deadline = Instant::now() + POWER_OFF_LIMIT;
        while !vm.stopped()? && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    drop(vm);
    if let Some(why) = problem {
        for run in &runs[done..] {
            println!("test [{release}] {} ... FAILED ({why})", run.name);
            tally.failed += 1;
        }
        println!(
            "[{release}] console log: {}; test output: {}",
            console.display(),
            results.display()
        );
    }
    eprintln!(
        "xtask: [{release}] VM run took {} s",
        start.elapsed().as_secs()
    );
    Ok(tally)
}
