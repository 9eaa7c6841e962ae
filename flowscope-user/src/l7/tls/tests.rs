//! Byte-built TLS handshakes fed in every split.

use super::hello::tests::{client_hello_body, server_hello_body};
use super::*;
use crate::l7::L7Record;

const C: Side = Side::Initiator;
const S: Side = Side::Responder;

/// Self-signed test certificate made with `openssl req -x509 -newkey ec
/// -subj "/C=US/O=Flowscope Test/CN=example.com" -days 3650 -set_serial 7`;
/// `openssl x509 -dates` says notBefore Nov 25 18:12:01 2026 GMT,
/// notAfter Nov 22 18:12:01 2036 GMT.
const CERT_HEX: &str = "308201bb30820160a003020102020107300a06082a8648ce3d040302303c310b300906035504061302555331173015060355040a0c0e466c6f7773636f706520546573743114301206035504030c0b6578616d706c652e636f6d301e170d3236313132353138313230315a170d3336313132323138313230315a303c310b300906035504061302555331173015060355040a0c0e466c6f7773636f706520546573743114301206035504030c0b6578616d706c652e636f6d3059301306072a8648ce3d020106082a8648ce3d03010703420004a7f20ce7b7e079e4864e03e4b2fd4c0a5d5580d6a66c69f4d7f003e8f81b38fbc2da4f87ff7ca620e8c97381976bbb1e6b537f2aa376c30e4a695a18db4579f1a3533051301d0603551d0e041604141acd1f634a95d5180ddee44a0a58562229d679e1301f0603551d230418301680141acd1f634a95d5180ddee44a0a58562229d679e1300f0603551d130101ff040530030101ff300a06082a8648ce3d04030203490030460221008838863225d97b9cbd05761f5775adfd4d4e78c9c1ce1aaaf0c40cbd3d8d9eaf022100a3f90444b2c0169824c6d9ade46fcfa1635e2eed462a799c36874436e6c0f2eb";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// `payload` cut into records of at most `max` bytes.
fn records(ty: u8, payload: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in payload.chunks(max) {
        out.extend_from_slice(&[ty, 3, 3]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// `openssl x509 -inform der -noout -serial -fingerprint -sha1` of
/// [`CERT_HEX`]: `serial=07`, `8F:EC:…:09` (Suricata writes the
/// fingerprint in lower case).
const CERT_SERIAL: &str = "07";
const CERT_SHA1: &str = "8f:ec:6d:a4:eb:a9:e6:61:11:0c:42:7f:99:ac:c7:63:0d:28:00:09";

fn certificate_message() -> Vec<u8> {
    let der = unhex(CERT_HEX);
    let mut list = (der.len() as u32).to_be_bytes()[1..].to_vec();
    list.extend_from_slice(&der);
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    handshake(11, &body)
}

fn client_flight() -> Vec<u8> {
    records(22, &handshake(1, &client_hello_body()), 16_384)
}

/// ServerHello, Certificate, ServerKeyExchange (ECDHE on secp256r1, its
/// point and signature cut short: the parser reads the curve only),
/// ServerHelloDone in records of `max` bytes, then ChangeCipherSpec and
/// some encrypted data.
fn server_flight(max: usize) -> Vec<u8> {
    let mut hs = handshake(2, &server_hello_body());
    hs.extend(certificate_message());
    hs.extend(handshake(12, &[3, 0x00, 0x17, 1, 4]));
    hs.extend(handshake(14, &[]));
    let mut out = records(22, &hs, max);
    out.extend(records(20, &[1], 16));
    out.extend(records(23, &[0xee; 40], 16));
    out
}

fn run_with(config: TlsConfig, steps: &[(Side, &[u8])]) -> (Vec<TlsRecord>, TlsCounters) {
    let mut p = TlsParser::new(config);
    let mut out = Vec::new();
    for (side, bytes) in steps {
        p.feed(*side, bytes, &mut out);
    }
    p.end(C, &mut out);
    p.end(S, &mut out);
    (out, *p.counters())
}

/// Every field, the chain's fingerprints included.
fn all_on() -> TlsConfig {
    TlsConfig {
        chain_fingerprints: true,
        ..TlsConfig::default()
    }
}

fn run(steps: &[(Side, &[u8])]) -> Vec<TlsRecord> {
    run_with(all_on(), steps).0
}

/// A record's fields, owned, to compare with what a test expects.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields {
    sni: Option<String>,
    version: Option<String>,
    /// Hash and string.
    ja3: Option<(String, String)>,
    ja3s: Option<(String, String)>,
    ja4: Option<String>,
    alpn: Vec<String>,
    subject: Option<String>,
    issuerdn: Option<String>,
    serial: Option<String>,
    fingerprint: Option<String>,
    session_resumed: Option<bool>,
    notbefore: Option<String>,
    notafter: Option<String>,
    cipher: Option<u16>,
    server_alpn: Option<String>,
    cert_chain_fps: Vec<String>,
    curve: Option<u16>,
}

fn fields(r: &TlsRecord) -> Fields {
    let text = |v: Option<&str>| v.map(str::to_owned);
    let md5 =
        |v: Option<crate::l7::Md5Text<'_>>| v.map(|f| (f.hash.to_owned(), f.string.to_owned()));
    Fields {
        sni: text(r.sni()),
        version: text(r.version()),
        ja3: md5(r.ja3()),
        ja3s: md5(r.ja3s()),
        ja4: text(r.ja4()),
        alpn: r.alpn().map(str::to_owned).collect(),
        subject: text(r.subject()),
        issuerdn: text(r.issuerdn()),
        serial: text(r.serial()),
        fingerprint: text(r.fingerprint()),
        session_resumed: r.session_resumed,
        notbefore: text(r.notbefore()),
        notafter: text(r.notafter()),
        cipher: r.cipher,
        server_alpn: text(r.server_alpn()),
        cert_chain_fps: r.cert_chain_fps().map(str::to_owned).collect(),
        curve: r.curve,
    }
}

fn all_fields(records: &[TlsRecord]) -> Vec<Fields> {
    records.iter().map(fields).collect()
}

fn expected_1_2() -> Fields {
    Fields {
        sni: Some("example.com".into()),
        version: Some("TLS 1.2".into()),
        ja3: Some((
            "e9c51f79d13dfe5012c557c2f2020a5e".into(),
            "771,4865-49195-47,0-23-10-11-13-16-43,29-23,0".into(),
        )),
        ja3s: Some((
            "554786d4c84f8a7953b7e453c6371067".into(),
            "771,49195,65281-16-11".into(),
        )),
        ja4: Some("t13d0307h2_58a34ed92d94_38dbf9c86be1".into()),
        alpn: vec!["h2".into(), "http/1.1".into()],
        subject: Some("C=US, O=Flowscope Test, CN=example.com".into()),
        issuerdn: Some("C=US, O=Flowscope Test, CN=example.com".into()),
        serial: Some(CERT_SERIAL.into()),
        fingerprint: Some(CERT_SHA1.into()),
        session_resumed: None,
        notbefore: Some("2026-11-25T18:12:01".into()),
        notafter: Some("2036-11-22T18:12:01".into()),
        // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, as the JA3S says.
        cipher: Some(0xc02b),
        server_alpn: Some("h2".into()),
        // `sha256sum` of the certificate's DER.
        cert_chain_fps: vec![
            "9a3fac5f88192ebf663b63c7bf43450b50963526f624f2700dd0af62f5c2cc84".into(),
        ],
        curve: Some(23),
    }
}

#[test]
fn full_handshake_at_every_split() {
    let (client, server) = (client_flight(), server_flight(16_384));
    let steps: [(Side, &[u8]); 2] = [(C, &client), (S, &server)];
    let got = crate::l7::splits::assert_split_invariant(&steps, run);
    assert_eq!(all_fields(&got), vec![expected_1_2()]);
    // By default the chain is not hashed; nothing else changes.
    let (plain, _) = run_with(TlsConfig::default(), &steps);
    let want = Fields {
        cert_chain_fps: Vec::new(),
        ..expected_1_2()
    };
    assert_eq!(all_fields(&plain), vec![want]);
}

#[test]
fn handshake_messages_split_across_records() {
    let (client, server) = (client_flight(), server_flight(37));
    let mut p = TlsParser::new(all_on());
    let mut out = Vec::new();
    p.feed(C, &client, &mut out);
    p.feed(S, &server, &mut out);
    // Emitted as soon as both sides are over, without waiting for the end.
    assert!(p.is_done());
    assert_eq!(all_fields(&out), vec![expected_1_2()]);
    let json = serde_json::to_value(L7Record::Tls(out[0].clone())).unwrap();
    assert_eq!(
        json["tls"]["ja3"]["hash"],
        "e9c51f79d13dfe5012c557c2f2020a5e"
    );
    assert_eq!(
        json["tls"]["issuerdn"],
        "C=US, O=Flowscope Test, CN=example.com"
    );
    assert_eq!(
        json["tls"]["client_alpns"],
        serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(json["tls"]["server_alpns"], serde_json::json!(["h2"]));
    assert!(json["tls"].get("cipher").is_none(), "Zeek's only");
}

#[test]
fn tls13_server_hello_ends_the_clear_text() {
    let mut sh = server_hello_body();
    // Append supported_versions(0x0304) and a key share (x25519, its key
    // cut to 2 bytes) to the extension block.
    let ext_len = u16::from_be_bytes([sh[38], sh[39]]) + 6 + 10;
    sh[38..40].copy_from_slice(&ext_len.to_be_bytes());
    sh.extend_from_slice(b"\x00\x2b\x00\x02\x03\x04");
    sh.extend_from_slice(b"\x00\x33\x00\x06\x00\x1d\x00\x02\xaa\xbb");
    let server = records(22, &handshake(2, &sh), 16_384);
    let mut p = TlsParser::default();
    let mut out = Vec::new();
    p.feed(C, &client_flight(), &mut out);
    p.feed(S, &server, &mut out);
    assert!(p.is_done());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].version(), Some("TLS 1.3"));
    assert_eq!(
        out[0].ja3s().map(|j| j.string),
        Some("771,49195,65281-16-11-43-51")
    );
    assert_eq!(out[0].subject(), None);
    assert_eq!(out[0].curve, Some(29));
}

#[test]
fn oversized_split_message_is_counted() {
    let config = TlsConfig {
        max_handshake_bytes: 200,
        ..TlsConfig::default()
    };
    let (out, counters) = run_with(config, &[(C, &client_flight()), (S, &server_flight(100))]);
    assert_eq!(counters.handshake_too_large, 1);
    assert_eq!(counters.certificates, 0);
    assert_eq!(out.len(), 1);
    assert_eq!(fields(&out[0]).ja3s, expected_1_2().ja3s);
}

#[test]
fn gaps_and_non_tls_bytes() {
    let mut p = TlsParser::default();
    let mut out = Vec::new();
    p.feed(C, &client_flight(), &mut out);
    let server = server_flight(16_384);
    p.feed(S, &server[..60], &mut out);
    p.gap(S, 100, &mut out);
    assert_eq!(p.counters().gaps_lost, 1);
    assert_eq!(out.len(), 1, "both sides over: record emitted");
    assert_eq!(out[0].sni(), Some("example.com"));
    assert_eq!(out[0].ja3s(), None);

    let mut p = TlsParser::default();
    p.feed(C, b"GET / HTTP/1.1\r\n", &mut out);
    p.feed(S, b"HTTP/1.1 200 OK\r\n", &mut out);
    assert!(p.is_not_tls());
    assert_eq!(p.counters().not_tls, 2);
}

#[test]
fn a_reused_parser_is_a_fresh_one() {
    let config = all_on();
    let mut p = TlsParser::new(config);
    let mut out = Vec::new();
    // Mid-flow: the ClientHello read, the server's flight cut inside a
    // handshake message (in the carry buffer), then the client's side lost.
    let server = server_flight(64);
    p.feed(C, &client_flight(), &mut out);
    p.feed(S, &server[..100], &mut out);
    p.gap(C, 7, &mut out);
    p.reuse();
    assert_eq!(format!("{p:?}"), format!("{:?}", TlsParser::new(config)));
    let (client, server) = (client_flight(), server_flight(16_384));
    let mut q = TlsParser::new(config);
    let (mut reused, mut fresh) = (Vec::new(), Vec::new());
    for (side, bytes) in [(C, &client), (S, &server)] {
        p.feed(side, bytes, &mut reused);
        q.feed(side, bytes, &mut fresh);
    }
    assert_eq!(reused, fresh);
    assert_eq!(all_fields(&reused), vec![expected_1_2()]);
    assert_eq!(p.counters(), q.counters());
}
