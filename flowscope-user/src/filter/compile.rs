//! tcpdump expressions to classic BPF, by libpcap's own compiler
//! (`pcap_compile` on a dead handle of the capture's link type, optimised,
//! netmask unknown), through the `pcap` crate.

use super::classic::Insn;
use crate::view::LinkType;

/// The `DLT_` value libpcap compiles for: the link-layer header the
/// program expects in front of each frame.
pub fn dlt(link: LinkType) -> i32 {
    match link {
        LinkType::Ethernet => 1,
        LinkType::RawIp => 12,
        LinkType::LinuxSll => 113,
        LinkType::LinuxSll2 => 276,
        LinkType::Loopback => 0,
    }
}

/// Compiles `expr` for frames of `link`.
///
/// # Errors
///
/// libpcap's own message (what tcpdump prints after `tcpdump: `), or a
/// description of an instruction the `pcap` crate printed in a way we did
/// not expect.
pub fn compile(expr: &str, link: LinkType) -> Result<Vec<Insn>, String> {
    let dead = pcap::Capture::dead(pcap::Linktype(dlt(link))).map_err(|e| e.to_string())?;
    let program = dead.compile(expr, true).map_err(|e| match e {
        pcap::Error::PcapError(msg) => msg,
        pcap::Error::InvalidInputString => "the expression contains a NUL byte".into(),
        other => other.to_string(),
    })?;
    program
        .get_instructions()
        .iter()
        .map(|i| parse(&i.to_string()))
        .collect()
}

/// One instruction as `pcap::BpfInstruction` displays it: code, jt, jf
/// and k in decimal (the crate offers no field access).
fn parse(shown: &str) -> Result<Insn, String> {
    let bad = || format!("unexpected instruction from libpcap: {shown:?}");
    let mut f = shown.split(' ');
    let mut next = || f.next().ok_or_else(bad);
    let insn = Insn {
        code: next()?.parse().map_err(|_| bad())?,
        jt: next()?.parse().map_err(|_| bad())?,
        jf: next()?.parse().map_err(|_| bad())?,
        k: next()?.parse().map_err(|_| bad())?,
    };
    if f.next().is_some() {
        return Err(bad());
    }
    Ok(insn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(insns: &[Insn]) -> Vec<(u16, u8, u8, u32)> {
        insns.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
    }

    #[test]
    fn compiles_as_tcpdump_lists_it() {
        // `tcpdump -dd -s 65535 'ip and tcp'`: { code, jt, jf, k } lines.
        let insns = compile("ip and tcp", LinkType::Ethernet).unwrap();
        assert_eq!(
            listing(&insns),
            [
                (0x28, 0, 0, 0x0000_000c),
                (0x15, 0, 3, 0x0000_0800),
                (0x30, 0, 0, 0x0000_0017),
                (0x15, 0, 1, 0x0000_0006),
                (0x06, 0, 0, 0x0000_ffff),
                (0x06, 0, 0, 0x0000_0000),
            ]
        );
        // Raw IP: the IP header is at 0 and libpcap checks the version.
        let raw = compile("tcp", LinkType::RawIp).unwrap();
        assert!(
            listing(&raw)
                .iter()
                .any(|&(code, _, _, k)| code == 0x30 && k == 9),
            "{raw:?}"
        );
    }

    #[test]
    fn bad_expressions_get_libpcaps_message() {
        assert_eq!(
            compile("tcp port", LinkType::Ethernet).unwrap_err(),
            "can't parse filter expression: syntax error"
        );
        assert_eq!(
            compile("ip[0] << 40 = 0", LinkType::Ethernet).unwrap_err(),
            "shift by more than 31 bits"
        );
        assert_eq!(
            compile("tcp\0", LinkType::Ethernet).unwrap_err(),
            "the expression contains a NUL byte"
        );
    }

    #[test]
    fn parses_only_the_four_numbers() {
        assert_eq!(
            parse("40 0 0 12").unwrap(),
            Insn {
                code: 40,
                jt: 0,
                jf: 0,
                k: 12
            }
        );
        for bad in ["40 0 0", "40 0 0 12 1", "40 0 0 -1", "x 0 0 1", ""] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
