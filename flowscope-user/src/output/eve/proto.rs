//! EVE's `proto`: the IANA keyword of every assigned IP protocol number, as
//! Suricata writes it (its `known_proto` table: the IANA "Keyword" column,
//! `Any` for the numbers IANA gives no keyword), and the number in decimal
//! for the rest. Suricata writes a string in every case; the Filebeat
//! Suricata pipeline lowercases it.

/// Keywords of protocols 0 to 143, in order.
const NAMES: [&str; 144] = [
    "HOPOPT",
    "ICMP",
    "IGMP",
    "GGP",
    "IP-in-IP",
    "ST",
    "TCP",
    "CBT",
    "EGP",
    "IGP",
    "BBN-RCC-MON",
    "NVP-II",
    "PUP",
    "ARGUS",
    "EMCON",
    "XNET",
    "CHAOS",
    "UDP",
    "MUX",
    "DCN-MEAS",
    "HMP",
    "PRM",
    "XNS-IDP",
    "TRUNK-1",
    "TRUNK-2",
    "LEAF-1",
    "LEAF-2",
    "RDP",
    "IRTP",
    "ISO-TP4",
    "NETBLT",
    "MFE-NSP",
    "MERIT-INP",
    "DCCP",
    "3PC",
    "IDPR",
    "XTP",
    "DDP",
    "IDPR-CMTP",
    "TP++",
    "IL",
    "IPv6",
    "SDRP",
    "IPv6-Route",
    "IPv6-Frag",
    "IDRP",
    "RSVP",
    "GRE",
    "DSR",
    "BNA",
    "ESP",
    "AH",
    "I-NLSP",
    "SwIPe",
    "NARP",
    "MOBILE",
    "TLSP",
    "SKIP",
    "IPv6-ICMP",
    "IPv6-NoNxt",
    "IPv6-Opts",
    "Any",
    "CFTP",
    "Any",
    "SAT-EXPAK",
    "KRYPTOLAN",
    "RVD",
    "IPPC",
    "Any",
    "SAT-MON",
    "VISA",
    "IPCU",
    "CPNX",
    "CPHB",
    "WSN",
    "PVP",
    "BR-SAT-MON",
    "SUN-ND",
    "WB-MON",
    "WB-EXPAK",
    "ISO-IP",
    "VMTP",
    "SECURE-VMTP",
    "VINES",
    "TTP",
    "NSFNET-IGP",
    "DGP",
    "TCF",
    "EIGRP",
    "OSPF",
    "Sprite-RPC",
    "LARP",
    "MTP",
    "AX.25",
    "OS",
    "MICP",
    "SCC-SP",
    "ETHERIP",
    "ENCAP",
    "Any",
    "GMTP",
    "IFMP",
    "PNNI",
    "PIM",
    "ARIS",
    "SCPS",
    "QNX",
    "A/N",
    "IPComp",
    "SNP",
    "Compaq-Peer",
    "IPX-in-IP",
    "VRRP",
    "PGM",
    "Any",
    "L2TP",
    "DDX",
    "IATP",
    "STP",
    "SRP",
    "UTI",
    "SMP",
    "SM",
    "PTP",
    "IS-IS",
    "FIRE",
    "CRTP",
    "CRUDP",
    "SSCOPMCE",
    "IPLT",
    "SPS",
    "PIPE",
    "SCTP",
    "FC",
    "RSVP-E2E-IGNORE",
    "Mobility",
    "UDPLite",
    "MPLS-in-IP",
    "manet",
    "HIP",
    "Shim6",
    "WESP",
    "ROHC",
    "Ethernet",
];

/// Writes `"proto":"…"` for IP protocol `number` (after a comma).
pub(super) fn field(out: &mut Vec<u8>, number: u8) {
    match NAMES.get(usize::from(number)) {
        Some(name) => super::json::label_field(out, "proto", name),
        None => {
            super::json::key(out, "proto");
            out.push(b'"');
            super::json::uint(out, u64::from(number));
            out.push(b'"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: u8) -> String {
        let mut v = Vec::new();
        field(&mut v, n);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn names_follow_the_iana_keywords() {
        // Spot checks against the IANA registry (protocol-numbers.xhtml).
        assert_eq!(name(1), r#","proto":"ICMP""#);
        assert_eq!(name(6), r#","proto":"TCP""#);
        assert_eq!(name(17), r#","proto":"UDP""#);
        assert_eq!(name(41), r#","proto":"IPv6""#);
        assert_eq!(name(47), r#","proto":"GRE""#);
        assert_eq!(name(50), r#","proto":"ESP""#);
        assert_eq!(name(58), r#","proto":"IPv6-ICMP""#);
        assert_eq!(name(89), r#","proto":"OSPF""#);
        assert_eq!(name(112), r#","proto":"VRRP""#);
        assert_eq!(name(132), r#","proto":"SCTP""#);
        assert_eq!(name(137), r#","proto":"MPLS-in-IP""#);
        assert_eq!(name(143), r#","proto":"Ethernet""#);
        // Unassigned and experimental numbers: the number, as a string.
        assert_eq!(name(144), r#","proto":"144""#);
        assert_eq!(name(253), r#","proto":"253""#);
    }
}
