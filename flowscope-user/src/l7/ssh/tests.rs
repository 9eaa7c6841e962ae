//! Byte-built SSH connection starts fed in every split, and HASSH against
//! the published examples of <https://github.com/salesforce/hassh>.

use super::*;
use crate::l7::L7Record;
use crate::l7::session::{ParseStatus, Probe, SessionParser, SessionParserFactory};
use crate::view::Timestamp;

const C: Side = Side::Initiator;
const S: Side = Side::Responder;

/// The hassh README's client example (Cyberduck 6.7.1): kex, encryption,
/// MAC and compression lists; its published hassh is
/// 8a8ae540028bf433cd68356c1b9e8d5b.
const CYBERDUCK: [&str; 4] = [
    "curve25519-sha256@libssh.org,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group15-sha512,diffie-hellman-group16-sha512,diffie-hellman-group17-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256@ssh.com,diffie-hellman-group15-sha256,diffie-hellman-group15-sha256@ssh.com,diffie-hellman-group15-sha384@ssh.com,diffie-hellman-group16-sha256,diffie-hellman-group16-sha384@ssh.com,diffie-hellman-group16-sha512@ssh.com,diffie-hellman-group18-sha512@ssh.com",
    "aes128-cbc,aes128-ctr,aes192-cbc,aes192-ctr,aes256-cbc,aes256-ctr,blowfish-cbc,blowfish-ctr,cast128-cbc,cast128-ctr,idea-cbc,idea-ctr,serpent128-cbc,serpent128-ctr,serpent192-cbc,serpent192-ctr,serpent256-cbc,serpent256-ctr,3des-cbc,3des-ctr,twofish128-cbc,twofish128-ctr,twofish192-cbc,twofish192-ctr,twofish256-cbc,twofish256-ctr,twofish-cbc,arcfour,arcfour128,arcfour256",
    "hmac-sha1,hmac-sha1-96,hmac-md5,hmac-md5-96,hmac-sha2-256,hmac-sha2-512",
    "zlib@openssh.com,zlib,none",
];
const CYBERDUCK_HASSH: &str = "8a8ae540028bf433cd68356c1b9e8d5b";

/// The README's server example (OpenSSH 5.3). Its hasshServer is not
/// printed there; b1c6c0d56317555b85c7005a3de29325 is `printf %s
/// 'diffie-…;aes128-ctr,…;hmac-md5,…;none,zlib@openssh.com' | md5sum`.
const OPENSSH_5_3: [&str; 4] = [
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1",
    "aes128-ctr,aes192-ctr,aes256-ctr,arcfour256,arcfour128,aes128-cbc,3des-cbc,blowfish-cbc,cast128-cbc,aes192-cbc,aes256-cbc,arcfour,rijndael-cbc@lysator.liu.se",
    "hmac-md5,hmac-sha1,umac-64@openssh.com,hmac-ripemd160,hmac-ripemd160@openssh.com,hmac-sha1-96,hmac-md5-96",
    "none,zlib@openssh.com",
];
const OPENSSH_5_3_HASSH: &str = "b1c6c0d56317555b85c7005a3de29325";

const CLIENT_BANNER: &[u8] = b"SSH-2.0-Cyberduck/6.7.1.28683 (Mac OS X/10.13.6) (x86_64)\r\n";
const SERVER_BANNER: &[u8] = b"SSH-2.0-OpenSSH_5.3\r\n";

fn string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A binary packet (RFC 4253 §6) around `payload`, padded to a multiple of
/// eight bytes with at least four bytes of padding.
fn packet(payload: &[u8]) -> Vec<u8> {
    let padding = 4 + (8 - (5 + payload.len() + 4) % 8) % 8;
    let mut out = ((1 + payload.len() + padding) as u32)
        .to_be_bytes()
        .to_vec();
    out.push(padding as u8);
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0xa5, padding));
    out
}

/// A KEXINIT packet: `lists` are kex, host key, then encryption, MAC and
/// compression (each client to server, then server to client).
fn kexinit(lists: [&str; 8]) -> Vec<u8> {
    let mut p = vec![msg::KEXINIT];
    p.extend_from_slice(&[0x5a; 16]);
    for l in lists {
        p.extend(string(l.as_bytes()));
    }
    p.extend(string(b""));
    p.extend(string(b""));
    p.extend_from_slice(&[0, 0, 0, 0, 0]);
    packet(&p)
}

/// KEXINIT with the same four HASSH lists in both directions.
fn kexinit_of(hassh: [&str; 4], host_key: &str) -> Vec<u8> {
    let [kex, enc, mac, comp] = hassh;
    kexinit([kex, host_key, enc, enc, mac, mac, comp, comp])
}

fn client_flight() -> Vec<u8> {
    let mut out = CLIENT_BANNER.to_vec();
    // An IGNORE before the KEXINIT is skipped.
    out.extend(packet(&[msg::IGNORE, 0, 0, 0, 1, b'x']));
    out.extend(kexinit_of(CYBERDUCK, "ssh-ed25519,ssh-rsa"));
    // What follows the KEXINIT (a KEXDH_INIT here) is not read.
    out.extend(packet(&[30, 0, 0, 0, 0]));
    out
}

fn server_flight() -> Vec<u8> {
    let mut out = b"Welcome, this line comes first\r\n".to_vec();
    out.extend_from_slice(SERVER_BANNER);
    out.extend(kexinit_of(OPENSSH_5_3, "ssh-rsa,ssh-dss"));
    out.extend_from_slice(&[0xee; 40]);
    out
}

fn run_with(config: SshConfig, steps: &[(Side, &[u8])]) -> (Vec<SshRecord>, SshCounters) {
    let mut p = SshParser::new(config);
    let mut out = Vec::new();
    for (side, bytes) in steps {
        p.feed(*side, bytes, &mut out);
    }
    p.end(C, &mut out);
    p.end(S, &mut out);
    (out, *p.counters())
}

fn run(steps: &[(Side, &[u8])]) -> Vec<SshRecord> {
    run_with(SshConfig::default(), steps).0
}

/// Checks `r` is the record of the client and server flights.
fn assert_expected(r: &SshRecord) {
    let fingerprint =
        |hash: &str, lists: [&str; 4]| serde_json::json!({"hash": hash, "string": lists.join(";")});
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        serde_json::json!({
            "client": {
                "proto_version": "2.0",
                "software_version": "Cyberduck/6.7.1.28683",
                "hassh": fingerprint(CYBERDUCK_HASSH, CYBERDUCK),
            },
            "server": {
                "proto_version": "2.0",
                "software_version": "OpenSSH_5.3",
                "hassh": fingerprint(OPENSSH_5_3_HASSH, OPENSSH_5_3),
            },
        })
    );
    assert_eq!(
        r.client().and_then(|e| e.banner),
        Some("SSH-2.0-Cyberduck/6.7.1.28683 (Mac OS X/10.13.6) (x86_64)")
    );
    assert_eq!(
        r.server().and_then(|e| e.banner),
        Some("SSH-2.0-OpenSSH_5.3")
    );
    assert_eq!(
        r.algorithms(),
        Some(SshAlgorithms {
            kex: "diffie-hellman-group-exchange-sha256",
            host_key: "ssh-rsa",
            cipher: "aes128-cbc".into(),
            mac: "hmac-sha1".into(),
            compression: "zlib@openssh.com".into(),
        })
    );
}

#[test]
fn both_sides_in_every_split_give_one_record() {
    let (client, server) = (client_flight(), server_flight());
    let steps: [(Side, &[u8]); 2] = [(S, &server), (C, &client)];
    let whole = crate::l7::splits::assert_split_invariant(&steps, run);
    assert_eq!(whole.len(), 1);
    assert_expected(&whole[0]);
    let (_, counters) = run_with(SshConfig::default(), &steps);
    assert_eq!(
        counters,
        SshCounters {
            banners: 2,
            kexinits: 2,
            ..SshCounters::default()
        }
    );
}

#[test]
fn the_record_comes_when_both_kexinits_are_read() {
    let mut factory = SshFactory::default();
    let mut p: Box<dyn SessionParser<L7Record>> = factory.new_parser();
    let mut out = Vec::new();
    let t = Timestamp(1);
    assert_eq!(
        p.on_data(C, &client_flight(), t, &mut out),
        ParseStatus::Continue
    );
    assert!(out.is_empty());
    assert_eq!(
        p.on_data(S, &server_flight(), t, &mut out),
        ParseStatus::Done
    );
    let [L7Record::Ssh(r)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_expected(r);
    let mut counters = crate::l7::L7Counters::default();
    p.flush_counters(&mut counters);
    assert_eq!(counters.ssh.kexinits, 2);
}

#[test]
fn eve_object_has_suricatas_names_only() {
    let (records, _) = run_with(
        SshConfig::default(),
        &[(C, &client_flight()), (S, &server_flight())],
    );
    let json = serde_json::to_value(L7Record::Ssh(records[0].clone())).unwrap();
    let client = &json["ssh"]["client"];
    assert_eq!(client["proto_version"], "2.0");
    assert_eq!(client["software_version"], "Cyberduck/6.7.1.28683");
    assert_eq!(client["hassh"]["hash"], CYBERDUCK_HASSH);
    assert_eq!(json["ssh"]["server"]["hassh"]["hash"], OPENSSH_5_3_HASSH);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&json["ssh"]), ["client", "server"]);
    assert_eq!(keys(client), ["hassh", "proto_version", "software_version"]);
}

#[test]
fn directions_that_disagree_are_both_named() {
    let [kex, enc, mac, comp] = OPENSSH_5_3;
    let client = [
        CLIENT_BANNER.to_vec(),
        kexinit([
            kex,
            "ssh-rsa",
            "aes256-ctr,aes128-ctr",
            "aes128-ctr",
            mac,
            mac,
            "none",
            "zlib@openssh.com,none",
        ]),
    ]
    .concat();
    let server = [
        SERVER_BANNER.to_vec(),
        kexinit([kex, "ssh-ed25519", enc, enc, mac, mac, comp, comp]),
    ]
    .concat();
    let got = run(&[(C, &client), (S, &server)]);
    let a = got[0].algorithms().unwrap();
    assert_eq!(a.cipher, "To server: aes256-ctr, to client: aes128-ctr");
    assert_eq!(
        a.compression,
        "To server: none, to client: zlib@openssh.com"
    );
    assert_eq!(a.host_key, "Algorithm negotiation failed");
    assert_eq!(a.mac, "hmac-md5");
}

#[test]
fn banners_without_kexinit_are_reported_at_the_end() {
    let (out, counters) = run_with(
        SshConfig::default(),
        &[(S, b"SSH-1.99-OpenSSH_3.1p1\n"), (C, b"SSH-2.0-\r\n")],
    );
    let client = out[0].client().unwrap();
    let server = out[0].server().unwrap();
    assert_eq!(client.proto_version, Some("2.0"));
    assert_eq!(client.software_version, None);
    assert_eq!(server.proto_version, Some("1.99"));
    assert_eq!(server.software_version, Some("OpenSSH_3.1p1"));
    assert_eq!(server.hassh, None);
    assert_eq!(out[0].algorithms(), None);
    assert_eq!(counters.banners, 2);
}

#[test]
fn a_gap_stops_its_side_only() {
    let mut p = SshParser::default();
    let mut out = Vec::new();
    p.feed(S, SERVER_BANNER, &mut out);
    p.gap(S, 100, &mut out);
    p.feed(S, &kexinit_of(OPENSSH_5_3, "ssh-rsa"), &mut out);
    assert!(out.is_empty());
    p.feed(C, &client_flight(), &mut out);
    assert!(p.is_done());
    let r = &out[0];
    assert_eq!(r.server().unwrap().hassh, None);
    assert_eq!(r.client().unwrap().hassh.unwrap().hash, CYBERDUCK_HASSH);
    assert_eq!(p.counters().gaps_lost, 1);
}

#[test]
fn other_bytes_are_not_ssh() {
    let mut factory = SshFactory::default();
    let mut p: Box<dyn SessionParser<L7Record>> = factory.new_parser();
    let mut out = Vec::new();
    let lines = "hello\n".repeat(usize::from(MAX_LINES_BEFORE_BANNER) + 1);
    let t = Timestamp(1);
    assert_eq!(
        p.on_data(C, lines.as_bytes(), t, &mut out),
        ParseStatus::Continue
    );
    assert_eq!(
        p.on_data(S, b"\x16\x03\x01\x00\x05hello\n", t, &mut out),
        ParseStatus::Continue
    );
    p.on_end(S, t, &mut out);
    assert_eq!(p.on_gap(C, 1, t, &mut out), ParseStatus::Error);
    assert!(out.is_empty());
    let mut counters = crate::l7::L7Counters::default();
    p.flush_counters(&mut counters);
    assert_eq!(counters.ssh.not_ssh, 1);
}

#[test]
fn broken_packets_are_counted() {
    type Counter = fn(&SshCounters) -> u64;
    let cases: [(&[u8], Counter); 4] = [
        // Padding longer than the packet.
        (&[0, 0, 0, 8, 9, 20, 0, 0, 0, 0, 0, 0], |c| c.malformed),
        // A KEXINIT cut short inside its name-lists.
        (&[0, 0, 0, 12, 4, 20, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1], |c| {
            c.malformed
        }),
        // Another message where the KEXINIT was due.
        (&[0, 0, 0, 6, 4, 21, 0, 0, 0, 0], |c| c.no_kexinit),
        // Longer than the buffer may hold.
        (&[0, 0, 1, 0, 4, 20, 0, 0, 0, 0], |c| c.too_large),
    ];
    let config = SshConfig {
        max_packet_bytes: 64,
    };
    for (bytes, counter) in cases {
        let mut p = SshParser::new(config);
        let mut out = Vec::new();
        p.feed(C, CLIENT_BANNER, &mut out);
        p.feed(C, bytes, &mut out);
        p.feed(C, &[0u8; 64], &mut out);
        p.end(S, &mut out);
        assert_eq!(counter(p.counters()), 1, "{bytes:?}");
        assert_eq!(out.len(), 1, "the banner is still reported");
        assert!(p.is_done());
    }
}

#[test]
fn probe() {
    let f = SshFactory::default();
    let probe = |b: &[u8]| SessionParserFactory::<L7Record>::probe(&f, S, b);
    assert_eq!(probe(b"SSH-2.0-OpenSSH_9.2p1\r\n"), Probe::Certain);
    assert_eq!(probe(b"SSH-1"), Probe::Certain);
    assert_eq!(probe(b""), Probe::Unsure);
    assert_eq!(probe(b"SS"), Probe::Unsure);
    assert_eq!(probe(b"SSH-"), Probe::Unsure);
    assert_eq!(probe(b"SSH-x"), Probe::NotForUs);
    assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::NotForUs);
    assert!(SessionParserFactory::<L7Record>::is_well_known_port(&f, 22));
    assert!(!SessionParserFactory::<L7Record>::is_well_known_port(
        &f, 2222
    ));
}
