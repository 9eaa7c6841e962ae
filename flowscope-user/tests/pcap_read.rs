//! The pcap/pcapng reader on every shared capture (counts and first timestamps
//! from SOURCES.md) and on crafted, truncated and corrupt files.

use flowscope::pcap::{FileFormat, FrameRef, PcapError, PcapReader};
use flowscope::{LinkType, Timestamp};
use std::io::Read;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// `(file, packets, first packet "YYYY-MM-DD hh:mm:ss")` from the SOURCES.md table.
fn sources_table() -> Vec<(String, u64, String)> {
    let text = std::fs::read_to_string(format!("{PCAPS}/SOURCES.md")).expect("SOURCES.md");
    text.lines()
        .map(|l| l.split('|').map(str::trim).collect::<Vec<&str>>())
        .filter(|cols| cols.len() == 11 && cols[3].contains(" / ") && cols[1] != "file")
        .map(|cols| {
            (
                cols[1].to_string(),
                cols[4].parse().expect("packets column"),
                cols[6].to_string(),
            )
        })
        .collect()
}

/// Seconds since the epoch of a "YYYY-MM-DD hh:mm:ss" UTC time (civil-from-days).
fn epoch_seconds(s: &str) -> u64 {
    let n: Vec<i64> = s
        .split(['-', ' ', ':'])
        .map(|x| x.parse().unwrap())
        .collect();
    let (y, m, d) = (if n[1] <= 2 { n[0] - 1 } else { n[0] }, n[1], n[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n[3] * 3600 + n[4] * 60 + n[5]) as u64
}

#[test]
fn every_shared_capture_has_the_documented_packet_count() {
    let table = sources_table();
    // The prose says 40 files; the table (and the directory) hold 41.
    assert_eq!(table.len(), 41, "rows of the SOURCES.md table");
    for (file, packets, first) in table {
        let mut r =
            PcapReader::open(format!("{PCAPS}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut n = 0u64;
        let mut first_ts = None;
        while let Some(p) = r.next_packet().unwrap_or_else(|e| panic!("{file}: {e}")) {
            first_ts.get_or_insert(p.timestamp);
            assert!(p.frame.len() as u64 <= u64::from(p.orig_len).max(p.frame.len() as u64));
            n += 1;
        }
        assert_eq!(n, packets, "{file}");
        assert_eq!(r.stats().packets, packets, "{file}");
        assert_eq!(r.stats().skipped_link_type, 0, "{file}");
        assert_eq!(
            first_ts.unwrap().sec(),
            epoch_seconds(&first),
            "{file}: first timestamp"
        );
    }
}

#[test]
fn formats_and_link_types_of_real_files() {
    let r = PcapReader::open(format!("{PCAPS}/ws__tcp-badsegments.pcap")).unwrap();
    assert_eq!(r.format(), FileFormat::Pcap { nanosecond: false });
    assert_eq!(r.pcap_link_type(), Some(228));
    // tcpflow's test5 is pcapng despite its name.
    let r = PcapReader::open(format!("{PCAPS}/tcpflow__test5-lines-randomized.pcap")).unwrap();
    assert_eq!(r.format(), FileFormat::PcapNg);
    // 62 Ethernet packets on interface 0 and 2 BSD-loopback packets on interface 10 (capinfos).
    let mut r = PcapReader::open(format!("{PCAPS}/ws__many_interfaces.1.pcapng")).unwrap();
    let (mut eth, mut lo) = (0, 0);
    while let Some(p) = r.next_packet().unwrap() {
        match p.link {
            LinkType::Ethernet => eth += 1,
            LinkType::Loopback => lo += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((eth, lo), (62, 2));
    assert!(
        r.stats().skipped_blocks > 0,
        "the file has interface statistics blocks"
    );
}

// ---- crafted files ----

fn pcap_header(magic: u32, big: bool, snaplen: u32, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    w32(&mut v, magic);
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, snaplen);
    w32(&mut v, link);
    v
}

fn pcap_record(v: &mut Vec<u8>, big: bool, sec: u32, frac: u32, data: &[u8], orig: u32) {
    for x in [sec, frac, data.len() as u32, orig] {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
    }
    v.extend_from_slice(data);
}

/// A packet copied out of the reader: frame, timestamp, link type, wire length.
type Owned = (Vec<u8>, Timestamp, LinkType, u32);

/// Reads everything, or returns the error.
fn read_all(bytes: &[u8]) -> Result<Vec<Owned>, PcapError> {
    let mut r = PcapReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet()? {
        out.push((p.frame.to_vec(), p.timestamp, p.link, p.orig_len));
    }
    Ok(out)
}

#[test]
fn classic_both_byte_orders_and_resolutions() {
    for big in [false, true] {
        for (magic, frac, ns) in [
            (0xA1B2_C3D4u32, 250_000u32, 250_000_000u32),
            (0xA1B2_3C4D, 7, 7),
        ] {
            let mut f = pcap_header(magic, big, 65535, 101);
            pcap_record(&mut f, big, 1_000, frac, &[0x45, 1, 2], 60);
            pcap_record(&mut f, big, 1_001, 0, &[], 0);
            let got = read_all(&f).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].0, vec![0x45, 1, 2]);
            assert_eq!(got[0].1, Timestamp::new(1_000, ns));
            assert_eq!(got[0].2, LinkType::RawIp);
            assert_eq!(got[0].3, 60);
            assert_eq!(got[1].1, Timestamp::new(1_001, 0));
            assert!(got[1].0.is_empty());
            let r = PcapReader::new(&f[..]).unwrap();
            assert_eq!(
                r.format(),
                FileFormat::Pcap {
                    nanosecond: magic == 0xA1B2_3C4D
                }
            );
        }
    }
}

#[test]
fn classic_link_type_mapping_and_skipping() {
    for (link, want) in [
        (1, Some(LinkType::Ethernet)),
        (12, Some(LinkType::RawIp)),
        (228, Some(LinkType::RawIp)),
        (229, Some(LinkType::RawIp)),
        (113, Some(LinkType::LinuxSll)),
        (276, Some(LinkType::LinuxSll2)),
        (0, Some(LinkType::Loopback)),
        (108, Some(LinkType::Loopback)),
        (127, None),
        // FCS bits above the low 16 bits do not change the link type.
        (0x1000_0001, Some(LinkType::Ethernet)),
    ] {
        let mut f = pcap_header(0xA1B2_C3D4, false, 65535, link);
        pcap_record(&mut f, false, 1, 0, &[1, 2, 3, 4], 4);
        let mut r = PcapReader::new(&f[..]).unwrap();
        let got = r.next_packet().unwrap().map(|p| p.link);
        assert_eq!(got, want, "link type {link}");
        let s = r.stats();
        assert_eq!(s.skipped_link_type, u64::from(want.is_none()));
        assert_eq!(s.last_skipped_link_type, want.is_none().then_some(127));
    }
}

#[test]
fn classic_errors_name_the_offset() {
    assert!(matches!(
        read_all(b"\x01\x02\x03\x04rest"),
        Err(PcapError::BadMagic {
            offset: 0,
            magic: 0x0102_0304
        })
    ));
    assert!(matches!(
        read_all(b"\xd4\xc3"),
        Err(PcapError::TruncatedHeader {
            offset: 0,
            needed: 4,
            available: 2
        })
    ));
    let hdr = pcap_header(0xA1B2_C3D4, false, 65535, 1);
    assert!(matches!(
        read_all(&hdr[..20]),
        Err(PcapError::TruncatedHeader {
            offset: 0,
            needed: 24,
            ..
        })
    ));
    // Snap length 0 limits nothing (libpcap reads it so): each record
    // keeps all its captured bytes.
    let mut zero = pcap_header(0xA1B2_C3D4, false, 0, 1);
    pcap_record(&mut zero, false, 1, 0, &[7; 300], 300);
    let got = read_all(&zero).expect("snap length 0 is no limit");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.len(), got[0].3), (300, 300));

    let mut f = hdr.clone();
    pcap_record(&mut f, false, 1, 0, &[9; 10], 10);
    let second = f.len() as u64; // 24 + 16 + 10 = 50
    assert_eq!(second, 50);
    pcap_record(&mut f, false, 2, 0, &[8; 10], 10);
    // Cut inside the second record's header, then inside its data.
    assert!(matches!(
        read_all(&f[..f.len() - 20]),
        Err(PcapError::TruncatedHeader {
            offset: 50,
            needed: 16,
            available: 6
        })
    ));
    assert!(matches!(
        read_all(&f[..f.len() - 3]),
        Err(PcapError::TruncatedPacket {
            offset: 50,
            needed: 26,
            available: 23
        })
    ));
    // The first packet is still delivered before the error.
    let mut r = PcapReader::new(&f[..f.len() - 3]).unwrap();
    assert_eq!(r.next_packet().unwrap().unwrap().frame, &[9; 10]);
    assert!(r.next_packet().is_err());

    let mut huge = hdr.clone();
    huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    huge.extend_from_slice(&0x0100_0000u32.to_le_bytes());
    huge.extend_from_slice(&[0; 4]);
    assert!(matches!(
        read_all(&huge),
        Err(PcapError::RecordTooLong {
            offset: 24,
            len: 0x0100_0000,
            max: 262_144
        })
    ));
}

/// A reader that hands out at most 5 bytes per call, like a slow pipe.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        let k = dst.len().min(5).min(self.0.len());
        dst[..k].copy_from_slice(&self.0[..k]);
        self.0 = &self.0[k..];
        Ok(k)
    }
}

#[test]
fn reads_a_real_file_through_a_slow_stream() {
    let bytes = std::fs::read(format!("{PCAPS}/sanders__ek_to_cryptowall4.pcapng")).unwrap();
    let mut whole = PcapReader::new(&bytes[..]).unwrap();
    let mut slow = PcapReader::new(Trickle(&bytes)).unwrap();
    let mut n = 0;
    while let Some(a) = whole.next_packet().unwrap() {
        let (frame, ts) = (a.frame.to_vec(), a.timestamp);
        let b = slow.next_packet().unwrap().unwrap();
        assert_eq!((b.frame, b.timestamp), (&frame[..], ts));
        n += 1;
    }
    assert!(slow.next_packet().unwrap().is_none());
    assert_eq!(n, 653);
}

/// Batches ([`PcapReader::next_frames`]) of every size from one to 64 give
/// every shared capture's packets as [`PcapReader::next_packet`] does, with
/// the same counts, from the mapped file and from a stream.
#[test]
fn batches_read_what_one_packet_at_a_time_reads() {
    let mut files = 0;
    for e in std::fs::read_dir(PCAPS).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut one = PcapReader::new(&bytes[..]).unwrap();
        let mut expected = Vec::new();
        let end = loop {
            match one.next_packet() {
                Ok(Some(p)) => expected.push((p.frame.to_vec(), p.timestamp, p.link, p.orig_len)),
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        for (batch, mapped) in [(64, true), (1, false), (7, true), (33, false)] {
            let mut r = if mapped {
                PcapReader::open(&path).unwrap()
            } else {
                PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap()
            };
            let mut frames = vec![FrameRef::default(); batch];
            let mut got = Vec::new();
            let got_end = loop {
                match r.next_frames(&mut frames) {
                    Ok(0) => break None,
                    Ok(n) => {
                        let bytes = r.chunk().bytes();
                        got.extend(frames[..n].iter().map(|f| {
                            let p = f.view(bytes);
                            (p.frame.to_vec(), p.timestamp, p.link, p.orig_len)
                        }));
                    }
                    Err(e) => break Some(e.to_string()),
                }
            };
            assert_eq!(got.len(), expected.len(), "{name}: batches of {batch}");
            assert!(
                got == expected,
                "{name}: batches of {batch}: packets differ"
            );
            assert_eq!(got_end, end, "{name}: batches of {batch}: the end");
            assert_eq!(r.stats(), one.stats(), "{name}: batches of {batch}: counts");
        }
        files += 1;
    }
    assert!(files >= 40, "{files} captures read");
}

// ---- pcapng ----

struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, x: u16) -> [u8; 2] {
        if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn u32(&self, x: u32) -> [u8; 4] {
        if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn block(&mut self, kind: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let (k, l) = (self.u32(kind), self.u32(len));
        self.out.extend_from_slice(&k);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
    }
    fn shb(&mut self) {
        let mut b = self.u32(0x1A2B_3C4D).to_vec();
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&[0xFF; 8]);
        self.block(0x0A0D_0D0A, &b);
    }
    fn idb(&mut self, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut b = self.u16(link).to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.u32(snaplen));
        // An option the reader ignores (if_name), padded.
        b.extend_from_slice(&self.u16(2));
        b.extend_from_slice(&self.u16(3));
        b.extend_from_slice(b"lo\0\0");
        if let Some(r) = tsresol {
            b.extend_from_slice(&self.u16(9));
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            b.extend_from_slice(&self.u16(14));
            b.extend_from_slice(&self.u16(8));
            b.extend_from_slice(&if self.big {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            });
        }
        b.extend_from_slice(&[0, 0, 0, 0]);
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32) {
        let mut b = Vec::new();
        for x in [iface, (ts >> 32) as u32, ts as u32, data.len() as u32, orig] {
            b.extend_from_slice(&self.u32(x));
        }
        b.extend_from_slice(data);
        self.block(6, &b);
    }
    fn spb(&mut self, orig: u32, data: &[u8]) {
        let mut b = self.u32(orig).to_vec();
        b.extend_from_slice(data);
        self.block(3, &b);
    }
}

#[test]
fn pcapng_both_byte_orders_interfaces_and_resolutions() {
    for big in [false, true] {
        let mut ng = Ng {
            big,
            out: Vec::new(),
        };
        ng.shb();
        ng.idb(1, 0, None, None); // µs by default
        ng.idb(101, 0, Some(9), None); // ns
        ng.idb(113, 0, Some(0x80 | 20), Some(10)); // 2^-20 s, +10 s
        ng.block(0x0000_0005, &[0; 8]); // interface statistics: skipped
        ng.epb(0, 1_500_000, &[1, 2, 3], 3);
        ng.epb(1, 2_000_000_007, &[4; 5], 9);
        ng.epb(2, 3 << 20, &[5], 1);
        ng.spb(7, &[6; 7]);
        ng.block(0x0BAD_0BAD, &[1, 2, 3]); // unknown: skipped
        ng.idb(147, 0, None, None);
        ng.epb(3, 1, &[7], 1); // unsupported link type: skipped
        // A new section resets the interfaces.
        ng.shb();
        ng.idb(0, 0, None, None);
        ng.epb(0, 4_000_000, &[8, 8], 2);
        let mut r = PcapReader::new(&ng.out[..]).unwrap();
        let mut got = Vec::new();
        while let Some(p) = r.next_packet().unwrap() {
            got.push((p.frame.to_vec(), p.timestamp, p.link, p.orig_len));
        }
        let want = vec![
            (
                vec![1, 2, 3],
                Timestamp::new(1, 500_000_000),
                LinkType::Ethernet,
                3,
            ),
            (vec![4; 5], Timestamp::new(2, 7), LinkType::RawIp, 9),
            (vec![5], Timestamp::new(13, 0), LinkType::LinuxSll, 1),
            // SPB: interface 0, the previous packet's timestamp.
            (vec![6; 7], Timestamp::new(13, 0), LinkType::Ethernet, 7),
            (vec![8, 8], Timestamp::new(4, 0), LinkType::Loopback, 2),
        ];
        assert_eq!(got, want, "big endian: {big}");
        let s = r.stats();
        assert_eq!(
            (s.packets, s.skipped_link_type, s.skipped_blocks),
            (5, 1, 2)
        );
        assert_eq!(s.last_skipped_link_type, Some(147));
    }
}

#[test]
fn pcapng_spb_is_cut_to_the_snap_length() {
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, 4, None, None);
    ng.spb(100, &[1, 2, 3, 4, 5, 6]);
    let got = read_all(&ng.out).unwrap();
    assert_eq!(got[0].0, vec![1, 2, 3, 4]);
    assert_eq!(got[0].3, 100);
}

#[test]
fn pcapng_errors_name_the_offset() {
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.shb();
    let shb_len = ng.out.len() as u64;
    ng.idb(1, 0, None, None);
    let epb_at = ng.out.len() as u64;
    ng.epb(0, 1, &[1; 8], 8);
    let good = ng.out.clone();
    assert_eq!(read_all(&good).unwrap().len(), 1);

    // Truncated block header, then truncated block body.
    assert!(matches!(
        read_all(&good[..epb_at as usize + 6]),
        Err(PcapError::TruncatedHeader { offset, needed: 8, available: 6 }) if offset == epb_at
    ));
    assert!(matches!(
        read_all(&good[..good.len() - 1]),
        Err(PcapError::TruncatedPacket { offset, .. }) if offset == epb_at
    ));
    // Unknown interface.
    let mut bad = Ng {
        big: false,
        out: good[..epb_at as usize].to_vec(),
    };
    bad.epb(3, 1, &[1], 1);
    assert!(matches!(
        read_all(&bad.out),
        Err(PcapError::UnknownInterface { offset, interface: 3, known: 1 }) if offset == epb_at
    ));
    // Trailing length differs.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 4] ^= 0x04;
    assert!(matches!(read_all(&bad), Err(PcapError::BadBlock { offset, .. }) if offset == epb_at));
    // Length not a multiple of 4 / absurd.
    let mut bad = good.clone();
    bad[epb_at as usize + 4] = 13;
    assert!(matches!(read_all(&bad), Err(PcapError::BadBlock { offset, .. }) if offset == epb_at));
    let mut bad = good.clone();
    bad[epb_at as usize + 4..epb_at as usize + 8].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    assert!(
        matches!(read_all(&bad), Err(PcapError::RecordTooLong { offset, .. }) if offset == epb_at)
    );
    // Captured length beyond the block.
    let mut bad = good.clone();
    bad[epb_at as usize + 20] = 200;
    assert!(matches!(read_all(&bad), Err(PcapError::BadBlock { offset, .. }) if offset == epb_at));
    // Bad byte-order magic, unsupported version.
    let mut bad = good.clone();
    bad[8] = 0;
    assert!(matches!(
        read_all(&bad),
        Err(PcapError::BadMagic { offset: 8, .. })
    ));
    let mut bad = good.clone();
    bad[12] = 2;
    assert!(matches!(
        read_all(&bad),
        Err(PcapError::UnsupportedVersion {
            offset: 0,
            major: 2,
            minor: 0
        })
    ));
    assert_eq!(shb_len, 28);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes after a valid pcap or pcapng header never panic the
        /// reader: it returns packets, then `None` or an error.
        #[test]
        fn no_panic_on_arbitrary_records(ng in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut f = if ng {
                let mut n = Ng { big: false, out: Vec::new() };
                n.shb();
                n.idb(1, 0, None, None);
                n.out
            } else {
                pcap_header(0xA1B2_C3D4, false, 65535, 1)
            };
            f.extend_from_slice(&body);
            if let Ok(mut r) = PcapReader::new(&f[..]) {
                while let Ok(Some(p)) = r.next_packet() {
                    prop_assert!(p.frame.len() <= f.len());
                }
            }
        }
    }
}

/// `skipped_blocks` (`pcapng_blocks_skipped` in `read --summary-json`)
/// counts the blocks of each shared pcapng file that describe neither a
/// section, an interface nor a packet (statistics, name resolution, …),
/// as a plain walk of the block headers finds them.
#[test]
fn pcapng_skipped_blocks_are_the_blocks_without_packets() {
    let mut seen = 0;
    for entry in std::fs::read_dir(PCAPS).expect("shared captures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "pcapng") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let (mut at, mut big, mut want) = (0, false, 0);
        while at + 12 <= bytes.len() {
            let word = |i: usize, big: bool| {
                let b: [u8; 4] = bytes[i..i + 4].try_into().expect("4 bytes");
                if big {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            };
            if bytes[at..at + 4] == [0x0A, 0x0D, 0x0D, 0x0A] {
                big = word(at + 8, true) == 0x1A2B_3C4D;
            } else if !matches!(word(at, big), 1 | 2 | 3 | 6) {
                want += 1;
            }
            at += word(at + 4, big) as usize;
        }
        let mut r = PcapReader::open(&path).expect("open");
        while r.next_packet().expect("read").is_some() {}
        assert_eq!(r.stats().skipped_blocks, want, "{}", path.display());
        seen += want;
    }
    assert!(seen > 0, "some shared pcapng file has a block to skip");
}
