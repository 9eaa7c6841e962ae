//! QUIC parser tests: RFC 9001 and RFC 9369 Appendix A (keys, header
//! protection, the sample client Initial), and packets protected here
//! byte by byte to exercise reassembly, coalescing, Retry, Version
//! Negotiation, undecryptable packets and Google QUIC.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm};

use super::chlo::tests::chlo;
use super::keys::{self, InitialKeys};
use super::packet::{self, Packet};
use super::version::{PacketType, Version};
use super::*;
use crate::l7::session::{DatagramParserFactory, Probe, Texts};
use crate::l7::tls::hello::tests::client_hello_body;
use crate::l7::{L7Record, QuicFactory};

const C: Side = Side::Initiator;
const S: Side = Side::Responder;
const V1: u32 = 1;
const DRAFT_29: u32 = 0xff00_001d;
const V2: u32 = 0x6b33_43cf;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn protected(version: u32) -> Protected {
    match Version::of(version) {
        Some(Version::Protected(p)) => p,
        other => panic!("{version:x}: {other:?}"),
    }
}

/// RFC 9001 §A.2: the protected client Initial packet.
const RFC9001_CLIENT_INITIAL: &str = concat!(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11",
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399",
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c",
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212",
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5",
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208",
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec",
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3",
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db",
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c",
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8",
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556",
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74",
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a",
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00",
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632",
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964",
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd",
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff",
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198",
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd",
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73",
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f",
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e",
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade",
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047",
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2",
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4",
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0",
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e",
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0",
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400",
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab",
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9",
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4",
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064",
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241",
    "e221af44860018ab0856972e194cd934",
);

/// RFC 9369 §A.2: the same Initial protected for QUIC v2.
const RFC9369_CLIENT_INITIAL: &str = concat!(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485",
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04",
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d",
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a",
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500",
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68",
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33",
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3",
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd",
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520",
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045",
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f",
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12",
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5",
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4",
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b",
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7",
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9",
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91",
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd",
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db",
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18",
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15",
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc",
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61",
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710",
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b",
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e",
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce",
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1",
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1",
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd",
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3",
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89",
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53",
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19",
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b",
    "a18b2faa745b6fe189cf772a9f84cbfc",
);

/// RFC 9001 §A.2 (and RFC 9369 §A.2): the unprotected CRYPTO frame, to be
/// followed by PADDING up to a 1162-byte payload.
const RFC_CRYPTO_FRAME: &str = concat!(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868",
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578",
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005",
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba",
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400",
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100",
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000",
    "75300901100f088394c8f03e51570806048000ffff",
);

/// RFC 9001 §A.4: a Retry answering the §A.2 Initial, new SCID f067a5502a4262b5.
const RFC9001_RETRY: &str =
    "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba";
/// RFC 9369 §A.4: the same Retry in QUIC v2.
const RFC9369_RETRY: &str =
    "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6";

/// The RFC's DCID.
const RFC_DCID: &str = "8394c8f03e515708";

/// The RFC's ClientHello message (the CRYPTO frame's data).
fn rfc_hello() -> Vec<u8> {
    unhex(RFC_CRYPTO_FRAME)[4..].to_vec()
}

#[test]
fn rfc9001_and_rfc9369_initial_keys() {
    let v1 = keys::material(&protected(V1), &unhex(RFC_DCID));
    assert_eq!(
        hex(&v1.secret),
        "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    );
    assert_eq!(hex(&v1.key), "1f369613dd76d5467730efcbe3b1a22d");
    assert_eq!(hex(&v1.iv), "fa044b2f42a3fd3b46fb255c");
    assert_eq!(hex(&v1.hp), "9f50449e04a0e810283a1e9933adedd2");
    let v2 = keys::material(&protected(V2), &unhex(RFC_DCID));
    assert_eq!(
        hex(&v2.secret),
        "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b"
    );
    assert_eq!(hex(&v2.key), "8b1a0bc121284290a29e0971b5cd045d");
    assert_eq!(hex(&v2.iv), "91f73e2351d8fa91660e909f");
    assert_eq!(hex(&v2.hp), "45b95e15235d6f45a6b19cbcb0294ba9");
}

/// Opens an RFC sample packet; checks the unprotected header and the payload.
fn open_rfc_packet(packet_hex: &str, version: u32, header_hex: &str) {
    let packet = unhex(packet_hex);
    let Some(Packet::Protected {
        version: v,
        ty,
        dcid,
        pn_offset,
        end,
        ..
    }) = packet::parse(&packet)
    else {
        panic!("the RFC packet parses");
    };
    assert_eq!(
        (v.number, ty, hex(dcid)),
        (version, PacketType::Initial, RFC_DCID.into())
    );
    // 18 header bytes before the packet number, 1182 after it.
    assert_eq!((pn_offset, end), (18, 1200));
    let keys = InitialKeys::derive(&v, dcid);
    let mut buf = Vec::new();
    let payload = keys.open(&packet, pn_offset, &mut buf).expect("opens");
    assert_eq!(hex(&buf[..payload.start]), header_hex);
    let mut want = unhex(RFC_CRYPTO_FRAME);
    want.resize(1162, 0);
    assert_eq!(&buf[payload], &want[..]);
}

#[test]
fn rfc9001_client_initial_opens_to_the_rfc_payload() {
    open_rfc_packet(
        RFC9001_CLIENT_INITIAL,
        V1,
        "c300000001088394c8f03e5157080000449e00000002",
    );
}

#[test]
fn rfc9369_client_initial_opens_to_the_rfc_payload() {
    open_rfc_packet(
        RFC9369_CLIENT_INITIAL,
        V2,
        "d36b3343cf088394c8f03e5157080000449e00000002",
    );
}

fn run(config: QuicConfig, datagrams: &[(Side, Vec<u8>)]) -> (Vec<QuicRecord>, QuicCounters) {
    let mut p = QuicParser::new(config);
    let mut out = Vec::new();
    for (side, d) in datagrams {
        p.datagram(*side, d, &mut out);
    }
    p.end();
    (out, *p.counters())
}

fn run_default(datagrams: &[(Side, Vec<u8>)]) -> (Vec<QuicRecord>, QuicCounters) {
    run(QuicConfig::default(), datagrams)
}

/// The record of the RFC's ClientHello (example.com, ALPN "alpn").
fn assert_rfc_record(r: &QuicRecord, version: &str) {
    assert_eq!(r.version(), version);
    assert_eq!(r.sni(), Some("example.com"));
    assert_eq!(r.alpn().collect::<Vec<_>>(), ["alpn"]);
    let ja3 = r.ja3().expect("ja3");
    // Read off the RFC's bytes: legacy version 0x0303, two ciphers, eleven
    // extensions in wire order, groups x25519, secp256r1, secp384r1, no
    // point formats extension.
    assert_eq!(
        ja3.string,
        "771,4865-4866,0-65281-10-16-5-51-43-13-45-28-57,29-23-24,"
    );
    // `printf %s <string> | md5sum`
    assert_eq!(ja3.hash, "41bc9ae914d6cb3bd0bd0a5453ab7d7f");
    // q, TLS 1.3, SNI, 2 ciphers, 11 extensions, "alpn" → "an"; hashes
    // with sha256sum of "1301,1302" and of the sorted extensions
    // (without 0 and 16) "_" the signature algorithms.
    assert_eq!(r.ja4(), Some("q13d0211an_62ed6f6ca7ad_4d634acda6c0"));
    assert!(r.ua().is_none() && r.cyu().is_none());
}

#[test]
fn rfc_sample_initials_give_their_record() {
    let (out, c) = run_default(&[(C, unhex(RFC9001_CLIENT_INITIAL))]);
    assert_eq!(out.len(), 1);
    assert_rfc_record(&out[0], "1");
    assert_eq!((c.initials_opened, c.client_hellos), (1, 1));
    let (out, _) = run_default(&[(C, unhex(RFC9369_CLIENT_INITIAL))]);
    assert_rfc_record(&out[0], "v2");
}

/// A sink that hands out one spare buffer, as the writer stage hands
/// written records' back.
struct Recycling {
    spare: Texts,
    out: Vec<QuicRecord>,
}

impl RecordSink<QuicRecord> for Recycling {
    fn emit(&mut self, record: QuicRecord) {
        self.out.push(record);
    }

    fn spare_text(&mut self) -> Texts {
        std::mem::take(&mut self.spare)
    }
}

#[test]
fn the_record_is_written_into_the_sinks_spare_buffer() {
    let initial = unhex(RFC9001_CLIENT_INITIAL);
    let (fresh, _) = run_default(&[(C, initial.clone())]);
    // Room for more fields and text than the record needs, so it does not
    // grow: its footprint tells it apart from a buffer of its own.
    let mut spare = Texts::default();
    spare.reset(200);
    spare.set(0, &"x".repeat(4096));
    let footprint = spare.footprint();
    let mut sink = Recycling {
        spare,
        out: Vec::new(),
    };
    QuicParser::default().datagram(C, &initial, &mut sink);
    assert_eq!(sink.out, fresh);
    let record = L7Record::Quic(sink.out.remove(0));
    let buffer = record.into_buffer();
    assert_eq!(buffer.footprint(), footprint);
}

fn varint2(v: usize) -> [u8; 2] {
    (0x4000 | v as u16).to_be_bytes()
}

/// A CRYPTO frame (type `ty`) of `data` at `offset`.
fn crypto_frame(ty: u8, offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![ty];
    f.extend(varint2(offset));
    f.extend(varint2(data.len()));
    f.extend(data);
    f
}

/// Builds and protects a client long-header packet: `first` carries the
/// type bits, the keys come from `key_dcid`, the packet number is 4 bytes.
struct Client {
    version: u32,
    key_dcid: Vec<u8>,
    dcid: Vec<u8>,
}

impl Client {
    fn new(version: u32, dcid: &[u8]) -> Self {
        Self {
            version,
            key_dcid: dcid.to_vec(),
            dcid: dcid.to_vec(),
        }
    }

    fn packet(&self, first: u8, token: Option<&[u8]>, pn: u32, payload: &[u8]) -> Vec<u8> {
        let m = keys::material(&protected(self.version), &self.key_dcid);
        let mut p = vec![first | 0x03];
        p.extend(self.version.to_be_bytes());
        p.push(self.dcid.len() as u8);
        p.extend(&self.dcid);
        p.extend([3, 0xa, 0xb, 0xc]);
        if let Some(t) = token {
            p.push(t.len() as u8);
            p.extend(t);
        }
        p.extend(varint2(4 + payload.len() + 16));
        let pn_offset = p.len();
        p.extend(pn.to_be_bytes());
        let mut nonce = m.iv;
        for (n, b) in nonce[8..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= b;
        }
        let mut sealed = payload.to_vec();
        let tag = Aes128Gcm::new(&m.key.into())
            .encrypt_inout_detached(&nonce.into(), &p, sealed.as_mut_slice().into())
            .unwrap();
        p.extend(sealed);
        p.extend(tag);
        let mut mask = aes::Block::default();
        mask.copy_from_slice(&p[pn_offset + 4..pn_offset + 20]);
        Aes128::new(&m.hp.into()).encrypt_block(&mut mask);
        p[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            p[pn_offset + i] ^= mask[1 + i];
        }
        p
    }

    /// An Initial (v1 type bits) carrying `frames`, padded.
    fn initial(&self, pn: u32, frames: &[u8]) -> Vec<u8> {
        let mut payload = frames.to_vec();
        payload.resize(payload.len().max(40), 0);
        self.packet(0xc0, Some(b""), pn, &payload)
    }
}

#[test]
fn a_hello_split_over_initials_in_any_order_is_reassembled() {
    let hello = rfc_hello();
    let c = Client::new(V1, b"\x01\x02\x03\x04\x05\x06\x07\x08");
    let (a, b, d) = (&hello[..60], &hello[60..150], &hello[150..]);
    // Packet 1: the last piece, PING, the first piece; packet 2: the middle.
    let mut p1 = crypto_frame(6, 150, d);
    p1.push(0x01);
    p1.extend(crypto_frame(6, 0, a));
    let p2 = [vec![0, 0, 0x01], crypto_frame(6, 60, b)].concat();
    for order in [[&p1, &p2], [&p2, &p1]] {
        let datagrams: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(i, f)| (C, c.initial(i as u32, f)))
            .collect();
        let (out, counters) = run_default(&datagrams);
        assert_eq!(out.len(), 1, "{counters:?}");
        assert_rfc_record(&out[0], "1");
        assert_eq!(counters.initials_opened, 2);
    }
}

#[test]
fn coalesced_packets_and_trailing_padding_are_walked() {
    let hello = rfc_hello();
    let c = Client::new(DRAFT_29, b"\x11\x22\x33\x44\x55\x66\x77\x88");
    // A 0-RTT packet (its protection is not opened; only its Length is read).
    let zero_rtt = [
        vec![0xd3],
        DRAFT_29.to_be_bytes().to_vec(),
        vec![8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0],
        varint2(24).to_vec(),
        vec![0x5a; 24],
    ]
    .concat();
    let first = [
        c.initial(0, &crypto_frame(6, 0, &hello[..100])),
        zero_rtt.clone(),
    ]
    .concat();
    let second = [
        zero_rtt,
        c.initial(1, &crypto_frame(6, 100, &hello[100..])),
        vec![0; 30],
    ]
    .concat();
    let (out, counters) = run_default(&[(C, first), (C, second)]);
    assert_eq!(out.len(), 1, "{counters:?}");
    assert_rfc_record(&out[0], "ff00001d");
    assert_eq!((counters.initials_opened, counters.malformed), (2, 0));
}

#[test]
fn retry_restarts_with_the_connection_id_it_gives() {
    let hello = rfc_hello();
    for (version, retry) in [(V1, RFC9001_RETRY), (V2, RFC9369_RETRY)] {
        let first = Client::new(version, &unhex(RFC_DCID));
        let retried = Client::new(version, &unhex("f067a5502a4262b5"));
        let ty = if version == V2 { 0xd0 } else { 0xc0 };
        let token = b"token".as_slice();
        let retry = unhex(retry);
        let (out, counters) = run_default(&[
            (
                C,
                first.packet(ty, Some(b""), 2, &crypto_frame(6, 0, &hello[..100])),
            ),
            (S, retry),
            (
                C,
                retried.packet(ty, Some(token), 3, &crypto_frame(6, 0, &hello)),
            ),
        ]);
        assert_eq!(out.len(), 1, "{version:x}: {counters:?}");
        assert_eq!(counters.retries, 1);
        assert_eq!(counters.initials_opened, 2);
    }
    // The Retry missed by the capture: the new connection ID is tried.
    let first = Client::new(V1, b"\x01\x01\x01\x01\x01\x01\x01\x01");
    let second = Client::new(V1, b"\x02\x02\x02\x02\x02\x02\x02\x02");
    let (out, counters) = run_default(&[
        (C, first.initial(0, &crypto_frame(6, 0, &hello[..100]))),
        (C, second.initial(1, &crypto_frame(6, 0, &hello))),
    ]);
    assert_eq!((out.len(), counters.open_failures), (1, 0));
}

#[test]
fn the_server_initial_connection_id_keeps_the_first_keys() {
    // After the server's first Initial the client sends to the server's
    // connection ID, still with keys from its first DCID (RFC 9001 §5.2).
    let hello = rfc_hello();
    let first = Client::new(V1, b"\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a");
    let later = Client {
        dcid: b"\x0b\x0b\x0b\x0b".to_vec(),
        ..Client::new(V1, b"\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a")
    };
    let (out, counters) = run_default(&[
        (C, first.initial(0, &crypto_frame(6, 0, &hello[..100]))),
        (C, later.initial(1, &crypto_frame(6, 100, &hello[100..]))),
    ]);
    assert_eq!((out.len(), counters.initials_opened), (1, 2));
}

#[test]
fn version_negotiation_restarts_with_another_version() {
    let hello = rfc_hello();
    let dcid = b"\x42\x42\x42\x42\x42\x42\x42\x42";
    let draft = Client::new(DRAFT_29, dcid);
    let v1 = Client::new(V1, dcid);
    // Version Negotiation (RFC 9000 §17.2.1): version 0, CIDs, versions.
    let vn = [
        vec![0x80, 0, 0, 0, 0, 3, 0xa, 0xb, 0xc, 8],
        dcid.to_vec(),
        vec![0, 0, 0, 1],
    ]
    .concat();
    let (out, counters) = run_default(&[
        (C, draft.initial(0, &crypto_frame(6, 0, &hello[..100]))),
        (S, vn),
        (C, v1.initial(0, &crypto_frame(6, 0, &hello))),
    ]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].version(), "1");
    assert_eq!(counters.version_negotiations, 1);
}

#[test]
fn undecryptable_and_malformed_packets_are_counted_not_fatal() {
    let hello = rfc_hello();
    let c = Client::new(V1, b"\x07\x07\x07\x07\x07\x07\x07\x07");
    let mut damaged = c.initial(0, &crypto_frame(6, 0, &hello));
    let at = damaged.len() - 30;
    damaged[at] ^= 0x40;
    // A frame type an Initial may not carry (STREAM, 0x08) after the hello's start.
    let stream = [crypto_frame(6, 0, &hello[..10]), vec![0x08, 0, 0]].concat();
    let (out, counters) = run_default(&[
        (C, damaged),
        (C, vec![0xc0, 0, 0, 0, 1, 8, 1]),
        (C, c.initial(1, &stream)),
        (C, c.initial(2, &crypto_frame(6, 0, &hello))),
    ]);
    assert_eq!(out.len(), 1);
    assert_eq!(counters.open_failures, 1);
    assert_eq!(counters.malformed, 2);
    assert_eq!(counters.initials_opened, 2);
}

#[test]
fn the_handshake_moving_on_without_a_hello_ends_the_parser() {
    let hello = rfc_hello();
    let c = Client::new(V1, b"\x09\x09\x09\x09\x09\x09\x09\x09");
    let mut p = QuicParser::default();
    let mut out = Vec::new();
    p.datagram(
        C,
        &c.initial(0, &crypto_frame(6, 0, &hello[..100])),
        &mut out,
    );
    assert!(!p.is_done());
    // A Handshake packet: the hello went unseen.
    p.datagram(C, &c.packet(0xe0, None, 0, &[0; 32]), &mut out);
    assert!(p.is_done() && out.is_empty());
    assert_eq!(p.counters().hellos_incomplete, 1);
    // Later datagrams cost nothing.
    p.datagram(C, &c.initial(1, &crypto_frame(6, 0, &hello)), &mut out);
    assert_eq!(p.counters().initials_opened, 1);
    // A short header ends it too.
    let (out, counters) = run_default(&[
        (C, c.initial(0, &crypto_frame(6, 0, &hello[..100]))),
        (C, vec![0x41, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3]),
    ]);
    assert!(out.is_empty());
    assert_eq!(counters.hellos_incomplete, 1);
}

#[test]
fn hellos_past_the_buffer_limit_are_counted() {
    let hello = rfc_hello();
    let c = Client::new(V1, b"\x05\x05\x05\x05\x05\x05\x05\x05");
    let config = QuicConfig {
        max_crypto_bytes: 100,
    };
    let (out, counters) = run(config, &[(C, c.initial(0, &crypto_frame(6, 0, &hello)))]);
    assert!(out.is_empty());
    assert_eq!((counters.crypto_dropped, counters.hellos_too_large), (1, 1));
}

#[test]
fn ja3_keeps_grease_as_suricata_writes_it_for_quic() {
    let body = client_hello_body();
    let mut message = vec![1, 0];
    message.extend((body.len() as u16).to_be_bytes());
    message.extend(&body);
    let c = Client::new(V1, b"\x03\x03\x03\x03\x03\x03\x03\x03");
    let (out, _) = run_default(&[(C, c.initial(0, &crypto_frame(6, 0, &message)))]);
    let r = &out[0];
    let ja3 = r.ja3().expect("ja3");
    // The body's GREASE cipher 0x5a5a and group 0x1a1a stay; its GREASE
    // extension 0x0a0a is written 64250.
    assert_eq!(
        ja3.string,
        "771,23130-4865-49195-47,64250-0-23-10-11-13-16-43,6682-29-23,0"
    );
    // `printf %s <string> | md5sum`
    assert_eq!(ja3.hash, "abcfc01b066c6bde4e7982591ed99178");
    // The TCP JA4 of this body (tls::fingerprint's test) with `q` first.
    assert_eq!(r.ja4(), Some("q13d0307h2_58a34ed92d94_38dbf9c86be1"));
    let json = serde_json::to_value(L7Record::Quic(r.clone())).unwrap();
    assert_eq!(
        json["quic"]["extensions"],
        serde_json::json!([
            {"type": 64250},
            {"name": "server_name", "type": 0, "values": ["example.com"]},
            {"name": "extended_master_secret", "type": 23},
            {"name": "supported_groups", "type": 10},
            {"name": "ec_point_formats", "type": 11},
            {"name": "signature_algorithms", "type": 13, "values": ["1027", "2052"]},
            {"name": "alpn", "type": 16, "values": ["h2", "http/1.1"]},
            {"name": "supported_versions", "type": 43,
             "values": ["TlsVersion(10794 / 0x2a2a)", "Tls13", "Tls12"]},
        ])
    );
    assert_eq!(json["quic"]["version"], "1");
}

#[test]
fn google_quic_q043_chlo_in_clear() {
    let m = chlo(&[
        (b"PAD\0", &[b'-'; 20]),
        (b"SNI\0", b"www.example.org"),
        (b"VER\0", b"Q043"),
        (b"UAID", b"Chrome/70.0 Linux"),
    ]);
    // Public header: version and 8-byte CID flags, 1-byte packet number.
    let mut p = vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8];
    p.extend(b"Q043");
    p.push(1);
    p.extend([0xee; 12]);
    // STREAM: data length present, no offset, 1-byte stream ID 1.
    p.extend([0xa0, 0x01]);
    p.extend((m.len() as u16).to_be_bytes());
    p.extend(&m);
    let (out, counters) = run_default(&[(C, p)]);
    let r = &out[0];
    assert_eq!(r.version(), "Q043");
    assert_eq!(r.sni(), Some("www.example.org"));
    assert_eq!(r.ua(), Some("Chrome/70.0 Linux"));
    assert_eq!(r.cyu().expect("cyu").string, "43,PAD-SNI-VER-UAID");
    assert_eq!(counters.chlos, 1);
}

#[test]
fn google_quic_q050_chlo_in_protected_initials() {
    let m = chlo(&[(b"SNI\0", b"q50.example"), (b"UAID", b"Chrome/80")]);
    let c = Client::new(
        u32::from_be_bytes(*b"Q050"),
        b"\x50\x50\x50\x50\x50\x50\x50\x50",
    );
    let (out, counters) = run_default(&[
        (C, c.initial(0, &crypto_frame(8, 10, &m[10..]))),
        (C, c.initial(1, &crypto_frame(8, 0, &m[..10]))),
    ]);
    assert_eq!(out.len(), 1, "{counters:?}");
    assert_eq!(out[0].version(), "51303530");
    assert_eq!(out[0].sni(), Some("q50.example"));
    assert_eq!(out[0].cyu().expect("cyu").string, "50,SNI-UAID");
}

#[test]
fn the_probe_knows_quic_on_any_port() {
    let f = QuicFactory::default();
    let probe = |b: &[u8]| DatagramParserFactory::<QuicRecord>::probe(&f, C, b);
    assert_eq!(probe(&unhex(RFC9001_CLIENT_INITIAL)), Probe::Certain);
    assert_eq!(probe(&unhex(RFC9369_CLIENT_INITIAL)), Probe::Certain);
    // A version not read here: the port decides.
    assert_eq!(
        probe(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 1, 7, 0]),
        Probe::Unsure
    );
    // A DNS query for example.com, a short header, a truncated Initial.
    let dns = unhex("abcd01000001000000000000076578616d706c6503636f6d0000010001");
    assert_eq!(probe(&dns), Probe::NotForUs);
    assert_eq!(probe(&[0x41, 1, 2, 3]), Probe::NotForUs);
    assert_eq!(
        probe(&unhex(RFC9001_CLIENT_INITIAL)[..600]),
        Probe::NotForUs
    );
}

/// A xorshift step: the property tests' own shuffles, from a drawn seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// However the hello is cut into CRYPTO frames, spread over Initials,
    /// repeated, reordered and mixed with PING and PADDING, the record is
    /// the one of the hello sent whole.
    #[test]
    fn any_framing_of_the_hello_gives_the_same_record(
        cuts in proptest::collection::btree_set(1usize..241, 0..8),
        packets in 1usize..5,
        seed in 1u64..,
    ) {
        let hello = rfc_hello();
        let c = Client::new(V1, b"\x0e\x0e\x0e\x0e\x0e\x0e\x0e\x0e");
        let (whole, _) = run_default(&[(C, c.initial(0, &crypto_frame(6, 0, &hello)))]);
        let mut bounds: Vec<usize> = cuts.into_iter().collect();
        bounds.insert(0, 0);
        bounds.push(hello.len());
        let mut pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        // One piece sent twice.
        let mut rng = seed;
        pieces.push(pieces[next(&mut rng) as usize % pieces.len()]);
        let mut frames: Vec<Vec<Vec<u8>>> = vec![Vec::new(); packets];
        for (start, end) in pieces {
            let p = next(&mut rng) as usize % packets;
            let at = next(&mut rng) as usize % (frames[p].len() + 1);
            frames[p].insert(at, crypto_frame(6, start, &hello[start..end]));
            if next(&mut rng).is_multiple_of(2) {
                frames[p].insert(at, vec![0x01]);
            }
        }
        let mut datagrams: Vec<(Side, Vec<u8>)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (C, c.initial(i as u32, &[f.concat(), vec![0x01]].concat())))
            .collect();
        for i in (1..datagrams.len()).rev() {
            datagrams.swap(i, next(&mut rng) as usize % (i + 1));
        }
        let (out, counters) = run_default(&datagrams);
        proptest::prop_assert_eq!(out, whole);
        proptest::prop_assert_eq!(counters.malformed + counters.crypto_dropped, 0);
    }

    /// Any plaintext in a well-protected Initial is read without a panic,
    /// giving at most one record.
    #[test]
    fn any_initial_payload_is_read_safely(
        payloads in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..600), 1..4),
    ) {
        let c = Client::new(V1, b"\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f");
        let datagrams: Vec<(Side, Vec<u8>)> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (C, c.initial(i as u32, p)))
            .collect();
        let (out, counters) = run_default(&datagrams);
        proptest::prop_assert!(out.len() <= 1);
        proptest::prop_assert!(counters.initials_opened >= 1);
        proptest::prop_assert_eq!(counters.open_failures, 0);
    }
}

#[test]
fn a_reused_parser_is_a_fresh_one() {
    let config = QuicConfig::default();
    let mut p = QuicParser::new(config);
    let mut out = Vec::new();
    // Mid-flow: keys derived, the hello read and its record emitted.
    p.datagram(C, &unhex(RFC9001_CLIENT_INITIAL), &mut out);
    assert!(p.is_done());
    p.reuse();
    assert!(!p.is_done());
    assert_eq!(*p.counters(), QuicCounters::default());
    let initial = unhex(RFC9369_CLIENT_INITIAL);
    let (mut reused, mut fresh) = (Vec::new(), Vec::new());
    let mut q = QuicParser::new(config);
    p.datagram(C, &initial, &mut reused);
    q.datagram(C, &initial, &mut fresh);
    assert_eq!(reused, fresh);
    assert_rfc_record(&reused[0], "v2");
    assert_eq!(p.counters(), q.counters());
}
