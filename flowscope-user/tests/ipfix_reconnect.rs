//! IPFIX over TCP when the collector goes away: the exporter reconnects,
//! starts a new transport session (templates first, sequence numbers from
//! 0), counts what its bounded queue could not hold, and at the end every
//! record given is either received by the collector or counted as dropped.

mod ipfix_support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use flowscope::output::ipfix::{IpfixConfig, IpfixExporter, IpfixMode, IpfixTransport};
use flowscope::tracker::TrackerConfig;
use ipfix_support::*;

/// Accepts one connection within `limit` (the test never hangs).
fn accept_within(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                s.set_read_timeout(Some(Duration::from_secs(20)))
                    .expect("timeout");
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection within {limit:?}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Sequence numbers and record counts of one connection's messages; the
/// sequence numbers must start at 0 and count the records before them.
fn session_records(stream: &mut Vec<u8>) -> usize {
    let messages = split_messages(stream);
    let mut total = 0usize;
    for (seq, n) in count_records(&messages) {
        assert_eq!(seq as usize, total, "sequence number");
        total += n;
    }
    total
}

#[test]
fn collector_restart_loses_only_counted_records() {
    let recs = records("ndpi__android.pcap", TrackerConfig::default());
    let batch_a = &recs[..recs.len() / 2];
    // Batch B is far larger than the queue plus one message.
    let batch_b: Vec<_> = recs.iter().cycle().take(3_000).collect();
    let produced = (batch_a.len() + batch_b.len()) as u64;

    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut x = IpfixExporter::start(IpfixConfig {
        mode: IpfixMode::Biflow,
        domain_id: 5,
        queue_capacity: 64,
        flush_interval: Duration::from_millis(20),
        io_timeout: Duration::from_millis(500),
        max_backoff: Duration::from_millis(100),
        ..IpfixConfig::new(IpfixTransport::Tcp, addr)
    })
    .expect("start");

    // Connection 1 reads batch A, then the collector goes away entirely.
    let want_a = batch_a.len();
    let first = std::thread::spawn(move || {
        let mut s = accept_within(&listener, Duration::from_secs(10));
        let mut stream = Vec::new();
        let mut got = 0;
        let mut buf = [0u8; 65_536];
        while got < want_a {
            let n = s.read(&mut buf).expect("read batch A");
            assert!(n > 0, "exporter closed after {got} of {want_a} records");
            stream.extend_from_slice(&buf[..n]);
            let mut copy = stream.clone();
            got = session_records(&mut copy);
        }
        got
    });
    for (r, reason) in batch_a {
        x.flow(r, *reason);
    }
    x.flush();
    let received_a = first.join().expect("collector 1");
    assert_eq!(received_a, batch_a.len());

    // Nobody listens while batch B arrives: the queue overflows.
    for (r, reason) in &batch_b {
        x.flow(r, *reason);
    }
    let mid = x.stats();
    assert!(mid.queue_overflow > 0, "{mid:?}");

    // The collector comes back on the same port.
    let listener = TcpListener::bind(addr).expect("rebind");
    let second = std::thread::spawn(move || {
        let mut s = accept_within(&listener, Duration::from_secs(10));
        let mut stream = Vec::new();
        let _ = s.read_to_end(&mut stream);
        let got = session_records(&mut stream);
        assert!(stream.is_empty(), "a partial message at the end");
        got
    });
    let st = x.finish();
    let received_b = second.join().expect("collector 2");

    assert_eq!(st.records, produced);
    assert_eq!(st.connections, 2, "{st:?}");
    assert!(st.records_dropped > 0, "{st:?}");
    assert_eq!(
        (received_a + received_b) as u64 + st.records_dropped,
        produced,
        "{st:?}"
    );
    assert_eq!(st.records_sent, (received_a + received_b) as u64, "{st:?}");
}
