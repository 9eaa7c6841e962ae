//! Issue 22: tcpdump filter expressions in userspace. The interpreter
//! (`Filter::matches`) must decide exactly as libpcap's own
//! `pcap_offline_filter` on every frame of every shared capture, for every
//! expression of `common::filters::EXPRESSIONS`; the programs it runs must be
//! the ones tcpdump compiles; bad expressions say what tcpdump says.

mod common;

use std::process::Command;

use common::filters::{Compiled, EXPRESSIONS, PCAPS, captures};
use flowscope::{
    LinkType,
    filter::{Filter, FilterError, Insn, Program},
};

#[test]
fn interpreter_decides_as_libpcap_on_every_frame() {
    let caps = captures();
    let frames: usize = caps.iter().map(|c| c.frames.len()).sum();
    let mut compared = 0u64;
    let mut refused_for_link = 0u64;
    for expr in EXPRESSIONS {
        let mut compiled = Compiled::new(expr);
        let (mut accepted, mut rejected) = (0u64, 0u64);
        for cap in &caps {
            for (i, f) in cap.frames.iter().enumerate() {
                let Some((ours, theirs)) = compiled.get(f.link) else {
                    refused_for_link += 1;
                    continue;
                };
                // The pcap crate hands libpcap caplen = len = the bytes given.
                let libpcap = theirs.filter(&f.bytes);
                let caplen = u32::try_from(f.bytes.len()).unwrap();
                assert_eq!(
                    ours.matches(&f.bytes, caplen),
                    libpcap,
                    "{expr:?}: {} frame {} ({} bytes)",
                    cap.name,
                    i + 1,
                    f.bytes.len()
                );
                if libpcap {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
                compared += 1;
            }
        }
        println!("{expr:?}: {accepted} accepted, {rejected} rejected");
        assert!(
            accepted > 0 && rejected > 0,
            "{expr:?} must both accept and reject some frame of the captures to prove anything"
        );
    }
    println!(
        "{} expressions × {frames} frames of {} captures: {compared} decisions equal to libpcap's \
         ({refused_for_link} frame runs skipped: libpcap refuses the expression for that link type)",
        EXPRESSIONS.len(),
        caps.len()
    );
    assert!(compared > 4_000_000, "{compared}");
}

/// `len`, `less` and `greater` test the length on the wire: against
/// libpcap reading the file itself (with a filter set, it runs
/// `pcap_offline_filter` with each record's own caplen and len), on the
/// captures that were snapped.
#[test]
fn wire_length_decisions_match_libpcap_reading_the_file() {
    let caps = captures();
    let snapped: Vec<_> = caps
        .iter()
        .filter(|c| c.frames.iter().any(|f| f.wire_len as usize > f.bytes.len()))
        .collect();
    assert!(
        snapped.len() >= 2,
        "ndpi__badpackets and ws__communityid are snapped"
    );
    for cap in snapped {
        for expr in EXPRESSIONS {
            let mut compiled = Compiled::new(expr);
            let link = cap.frames[0].link;
            let Some((ours, _)) = compiled.get(link) else {
                continue;
            };
            let ours: Vec<(u32, &[u8])> = cap
                .frames
                .iter()
                .filter(|f| ours.matches(&f.bytes, f.wire_len))
                .map(|f| (f.wire_len, &f.bytes[..]))
                .collect();
            let mut file = pcap::Capture::from_file(format!("{PCAPS}/{}", cap.name)).unwrap();
            file.filter(expr, true).unwrap();
            let mut theirs = Vec::new();
            while let Ok(p) = file.next_packet() {
                theirs.push((p.header.len, p.data.to_vec()));
            }
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{expr:?} on {}: frames accepted",
                cap.name
            );
            for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                assert_eq!(
                    (o.0, o.1),
                    (t.0, &t.1[..]),
                    "{expr:?} on {}: accepted frame {i}",
                    cap.name
                );
            }
        }
    }
}

/// The instructions tcpdump lists for `expr` (`-ddd`: a count, then
/// `code jt jf k` lines), compiled for Ethernet with the same snap length.
fn tcpdump_program(expr: &str) -> Result<Vec<Insn>, String> {
    let out = Command::new("tcpdump")
        .args(["-ddd", "-s", "65535", expr])
        .output()
        .expect("tcpdump runs (`cargo xtask deps` installs it)");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().last().unwrap_or_default();
        return Err(line.strip_prefix("tcpdump: ").unwrap_or(line).to_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let n: usize = lines.next().unwrap().parse().unwrap();
    let insns: Vec<Insn> = lines
        .map(|l| {
            let v: Vec<u32> = l.split(' ').map(|x| x.parse().unwrap()).collect();
            Insn {
                code: v[0] as u16,
                jt: v[1] as u8,
                jf: v[2] as u8,
                k: v[3],
            }
        })
        .collect();
    assert_eq!(insns.len(), n);
    Ok(insns)
}

#[test]
fn programs_are_the_ones_tcpdump_compiles() {
    for expr in EXPRESSIONS {
        let ours = Filter::compile(expr, LinkType::Ethernet).unwrap();
        let theirs = Program::validate(&tcpdump_program(expr).unwrap()).unwrap();
        assert_eq!(ours.program(), &theirs, "{expr:?}");
    }
}

#[test]
fn bad_expressions_say_what_tcpdump_says() {
    for expr in [
        "tcp port",
        "ip[0] << 40 = 0",
        "vlan 5000",
        "portrange 5-",
        "tcp[100:3] = 1",
        "net 10.0.0.1/33",
    ] {
        let tcpdump = tcpdump_program(expr).unwrap_err();
        let ours = Filter::compile(expr, LinkType::Ethernet).unwrap_err();
        assert_eq!(ours.to_string(), format!("filter {expr:?}: {tcpdump}"));
        assert!(!ours.to_string().contains('\n'));
    }
    // tcpdump compiles `protochain` into a loop (a backward jump), which no
    // verifier would accept: refused, in one line.
    assert!(tcpdump_program("ip6 protochain 6").is_ok());
    let e = Filter::compile("ip6 protochain 6", LinkType::Ethernet).unwrap_err();
    assert!(matches!(e, FilterError::Invalid { .. }), "{e}");
    assert!(
        e.to_string().starts_with(
            "filter \"ip6 protochain 6\": the compiled program is refused: instruction 18: jump"
        ),
        "{e}"
    );
}
