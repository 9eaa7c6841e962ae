//! `xdpbench`: the XDP program's own cost per frame, with
//! `BPF_PROG_TEST_RUN` and a large repeat count, next to a minimal program
//! that returns `XDP_PASS` and a bare XSKMAP redirect by queue (what
//! libxdp's default AF_XDP program does), on a set of frame kinds; then the
//! cost of a filter expression (`--filter`): its XDP program alone, and our
//! program with it against our program without. Prints Markdown tables for
//! BENCHMARKS.md. Run it as root with `cargo xtask bench xdp [-- ARGS]`.
//!
//! The redirects find their XSKMAP slot empty and take the `XDP_PASS`
//! fallback (both ours and the bare one): the lookup is the same work
//! whether a socket is there or not, and a test run never performs the
//! redirect itself. The runs of one measurement share one buffer, so with
//! metadata on only the first run's `bpf_xdp_adjust_meta` succeeds: the
//! helper call is in every figure, the 32-byte store after it in none.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;

use clap::Parser;
use flowscope::{
    LinkType,
    capture::{
        Answer, Datapath, Feature, FilterAction, FilterMaps, FilterSpec, KernelFeatures, XdpFilter,
        bpf_sys::{self, EXIT, helper, ldx_u32, mov64_imm},
        set_jump,
    },
    filter::Filter,
};
use flowscope_common::{
    XdpConfig,
    config::{JUMP_ACCEPTED, JUMP_SLOTS, MODE_COUNT_ONLY, MODE_REDIRECT},
    counters::CpuBlock,
};

/// XDP program cost per frame (ns), ours against a minimal pass and a bare
/// XSKMAP redirect.
#[derive(Parser, Debug)]
#[command(name = "xdpbench", version)]
struct Args {
    /// Program runs per measurement (the kernel reports their mean).
    #[arg(long, default_value_t = 2_000_000)]
    repeat: u32,
    /// Measurements per program and frame (median reported).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// CPU to pin to (default: the last one allowed).
    #[arg(long)]
    cpu: Option<usize>,
    /// Filter expression whose cost is measured: by default what a sensor
    /// keeps out of its workers (rsync and NFS, a backup network).
    #[arg(
        long,
        default_value = "not (port 873 or port 2049 or net 203.0.113.0/24)"
    )]
    filter: String,
    /// Copies of each program loaded for the filter table: the same code
    /// loaded twice can differ by 10–30 ns per frame (where the JIT places
    /// it), so each figure pools every copy's runs.
    #[arg(long, default_value_t = 5)]
    copies: usize,
}

/// `struct xdp_md`'s `rx_queue_index` offset.
const RX_QUEUE_INDEX: i16 = 16;
const XDP_PASS: i32 = 2;

/// The frames: (name, bytes).
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mac = [2u8, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    let eth = |tags: &[u16], ethertype: u16| {
        let mut f = mac.to_vec();
        for (i, vid) in tags.iter().enumerate() {
            let tpid: u16 = if i == 0 && tags.len() > 1 {
                0x88a8
            } else {
                0x8100
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    };
    let ipv4 = |proto: u8, payload: usize, frag: u16| {
        let total = (20 + payload) as u16;
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
        h
    };
    let tcp = {
        let mut t = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff,
        ];
        t.extend_from_slice(&[0; 4]);
        t
    };
    let mut v4_tcp = eth(&[], 0x0800);
    v4_tcp.extend(ipv4(6, tcp.len() + 6, 0));
    v4_tcp.extend(&tcp);
    v4_tcp.extend([0u8; 6]);

    let udp_payload = [0u8; 32];
    let mut qinq_v6 = eth(&[100, 200], 0x86dd);
    qinq_v6.extend_from_slice(&[0x60, 0, 0, 0]);
    qinq_v6.extend_from_slice(&((8 + udp_payload.len()) as u16).to_be_bytes());
    qinq_v6.extend_from_slice(&[17, 64]);
    qinq_v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    qinq_v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    qinq_v6.extend_from_slice(&[0x13, 0x88, 0, 53]);
    qinq_v6.extend_from_slice(&((8 + udp_payload.len()) as u16).to_be_bytes());
    qinq_v6.extend_from_slice(&[0, 0]);
    qinq_v6.extend_from_slice(&udp_payload);

    // First fragment (MF set, offset 0) of a UDP datagram.
    let mut first_frag = eth(&[], 0x0800);
    first_frag.extend(ipv4(17, 8 + 32, 0x2000));
    first_frag.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 200, 0, 0]);
    first_frag.extend_from_slice(&[0u8; 32]);

    // Malformed: an IPv4 header whose IHL says 4 words.
    let mut malformed = v4_tcp.clone();
    malformed[14] = 0x44;
    vec![
        ("IPv4 TCP", v4_tcp),
        ("QinQ IPv6 UDP", qinq_v6),
        ("IPv4 first fragment", first_frag),
        ("malformed IPv4", malformed),
    ]
}

/// `return XDP_PASS`.
fn minimal() -> OwnedFd {
    bpf_sys::prog_load(
        bpf_sys::PROG_TYPE_XDP,
        &[mov64_imm(0, XDP_PASS), EXIT],
        "fs_bench_pass",
    )
    .expect("load the minimal program")
}

/// `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)`, and its
/// map (kept alive with it).
fn bare_redirect() -> (OwnedFd, OwnedFd) {
    let map = bpf_sys::map_create(bpf_sys::MAP_TYPE_XSKMAP, 4, 4, 64).expect("create an XSKMAP");
    let [ld0, ld1] = bpf_sys::ld_map_fd(1, map.as_fd());
    let insns = [
        ldx_u32(2, 1, RX_QUEUE_INDEX),
        ld0,
        ld1,
        mov64_imm(3, XDP_PASS),
        bpf_sys::call(helper::REDIRECT_MAP),
        EXIT,
    ];
    let prog = bpf_sys::prog_load(bpf_sys::PROG_TYPE_XDP, &insns, "fs_bench_redir")
        .expect("load the bare redirect");
    (prog, map)
}

/// Median of `runs` measurements of `repeat` runs: ns per frame.
fn measure(prog: BorrowedFd<'_>, frame: &[u8], args: &Args) -> f64 {
    let mut ns: Vec<u32> = (0..args.runs)
        .map(|_| {
            bpf_sys::test_run(prog, frame, args.repeat)
                .expect("BPF_PROG_TEST_RUN")
                .1
        })
        .collect();
    ns.sort_unstable();
    f64::from(ns[ns.len() / 2])
}

fn ours(mode: u32, metadata: bool, filter: Option<&FilterSpec>) -> Datapath {
    Datapath::load_detached(
        XdpConfig {
            mode,
            sockets_per_queue: 2,
            hash_seed: 7,
            _reserved: 0,
        },
        metadata,
        filter,
    )
    .expect("load flowscope's XDP program (build with `cargo xtask bench xdp`)")
}

/// The filter program on its own: rejected frames counted and passed,
/// accepted ones tail-calling `accept` (the minimal program). Returns the
/// program and the maps it needs kept open.
fn filter_alone(filter: &Filter, accept: BorrowedFd<'_>) -> (XdpFilter, [OwnedFd; 2]) {
    let counters = bpf_sys::map_create(
        bpf_sys::MAP_TYPE_PERCPU_ARRAY,
        4,
        std::mem::size_of::<CpuBlock>() as u32,
        1,
    )
    .expect("create a per-CPU array");
    let jump = bpf_sys::map_create(bpf_sys::MAP_TYPE_PROG_ARRAY, 4, 4, JUMP_SLOTS)
        .expect("create a program array");
    set_jump(jump.as_fd(), JUMP_ACCEPTED, accept).expect("fill the accept slot");
    let maps = FilterMaps {
        counters: counters.as_fd(),
        jump: jump.as_fd(),
    };
    let prog = XdpFilter::load(filter, maps, FilterAction::Pass).expect("load the filter");
    (prog, [counters, jump])
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cpu = args.cpu.unwrap_or_else(|| {
        bench::cpu::allowed_cpus()
            .ok()
            .and_then(|c| c.last().copied())
            .unwrap_or(0)
    });
    if let Err(e) = bench::cpu::pin_current_thread(cpu) {
        eprintln!("xdpbench: pinning to CPU {cpu}: {e}");
        return ExitCode::FAILURE;
    }
    let metadata_allowed = matches!(KernelFeatures::probe().get(Feature::XdpMeta), Answer::Yes);
    let pass = minimal();
    let (bare, _map) = bare_redirect();
    let mut contenders: Vec<(String, Datapath)> = vec![
        (
            "ours, count-only".into(),
            ours(MODE_COUNT_ONLY, false, None),
        ),
        (
            "ours, redirect, no metadata".into(),
            ours(MODE_REDIRECT, false, None),
        ),
    ];
    if metadata_allowed {
        contenders.push((
            "ours, redirect, metadata".into(),
            ours(MODE_REDIRECT, true, None),
        ));
    } else {
        eprintln!("xdpbench: this kernel refuses bpf_xdp_adjust_meta: no metadata row");
    }
    println!(
        "XDP program cost, ns/frame: median of {} test runs of {} repeats each, CPU {cpu}\n",
        args.runs, args.repeat
    );
    println!(
        "| frame | XDP_PASS | bare XSKMAP redirect | {} | redirect / bare |",
        contenders
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|--:|--:|{}--:|", "--:|".repeat(contenders.len()));
    for (name, frame) in frames() {
        let p = measure(pass.as_fd(), &frame, &args);
        let b = measure(bare.as_fd(), &frame, &args);
        let mut row = format!("| {name} ({} B) | {p:.1} | {b:.1} |", frame.len());
        let mut worst_redirect: f64 = 0.0;
        for (label, dp) in &mut contenders {
            let fd = dp.program().expect("program").fd().expect("fd").as_fd();
            let ns = measure(fd, &frame, &args);
            if label.contains("redirect") {
                worst_redirect = worst_redirect.max(ns);
            }
            row.push_str(&format!(" {ns:.1} |"));
        }
        row.push_str(&format!(" {:.2}x |", worst_redirect / b));
        println!("{row}");
    }
    filter_cost(&args, pass.as_fd())
}

/// The second table: the filter's cost per frame, alone and inside ours.
/// Every copy of every contender is measured in turn within each run, so
/// they share the machine's moments; each figure is the median of all its
/// copies' runs, with the range of the copies' own medians. Plus a frame
/// the default expression rejects.
fn filter_cost(args: &Args, pass: BorrowedFd<'_>) -> ExitCode {
    let filter = match Filter::compile(&args.filter, LinkType::Ethernet) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("xdpbench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec = FilterSpec {
        filter: filter.clone(),
        action: FilterAction::Pass,
    };
    let copies = args.copies.max(1);
    let alone: Vec<_> = (0..copies).map(|_| filter_alone(&filter, pass)).collect();
    let mut without: Vec<_> = (0..copies)
        .map(|_| ours(MODE_REDIRECT, false, None))
        .collect();
    let mut with: Vec<_> = (0..copies)
        .map(|_| ours(MODE_REDIRECT, false, Some(&spec)))
        .collect();
    let mut fds: Vec<BorrowedFd<'_>> = alone.iter().map(|(f, _)| f.fd()).collect();
    for dp in without.iter_mut().chain(with.iter_mut()) {
        fds.push(dp.program().expect("program").fd().expect("fd").as_fd());
    }
    println!(
        "\nFilter `{}` ({} classic instructions), ns/frame: median of {copies} loaded copies × {} \
         runs measured in turn (range of the copies' medians):\n",
        args.filter,
        filter.program().ops().len(),
        args.runs
    );
    println!(
        "| frame | verdict | filter alone | ours, redirect, no metadata | + filter | filter's share |"
    );
    println!("|---|---|--:|--:|--:|--:|");
    let mut frames = frames();
    let mut rsync = frames[0].1.clone();
    rsync[36..38].copy_from_slice(&873u16.to_be_bytes());
    frames.push(("IPv4 TCP to port 873", rsync));
    for (name, frame) in frames {
        let verdict = if filter.matches(&frame, frame.len() as u32) {
            "accept"
        } else {
            "reject"
        };
        let ns = measure_in_turn(&fds, &frame, args);
        let [a, o, w] = [0, 1, 2].map(|i| pooled(&ns[i * copies..(i + 1) * copies]));
        println!(
            "| {name} ({} B) | {verdict} | {} | {} | {} | {:+} ({:+.0} %) |",
            frame.len(),
            a.0,
            o.0,
            w.0,
            w.1 - o.1,
            100.0 * (w.1 - o.1) as f64 / o.1 as f64
        );
    }
    ExitCode::SUCCESS
}

/// `median (min–max of the copies' medians)`, and the median alone.
fn pooled(copies: &[Vec<u32>]) -> (String, i64) {
    let median = |v: &mut Vec<u32>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let mut all: Vec<u32> = copies.concat();
    let m = median(&mut all);
    let each: Vec<u32> = copies.iter().map(|c| median(&mut c.clone())).collect();
    let (lo, hi) = (each.iter().min().unwrap(), each.iter().max().unwrap());
    (format!("{m} ({lo}–{hi})"), i64::from(m))
}

/// `runs` measurements of each program, the programs measured one after
/// the other within each run.
fn measure_in_turn(progs: &[BorrowedFd<'_>], frame: &[u8], args: &Args) -> Vec<Vec<u32>> {
    let mut ns = vec![Vec::with_capacity(args.runs); progs.len()];
    for _ in 0..args.runs {
        for (prog, v) in progs.iter().zip(ns.iter_mut()) {
            v.push(
                bpf_sys::test_run(*prog, frame, args.repeat)
                    .expect("BPF_PROG_TEST_RUN")
                    .1,
            );
        }
    }
    ns
}
