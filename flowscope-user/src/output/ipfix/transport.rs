//! The IPFIX exporter: a bounded queue in front of a sender thread that
//! speaks UDP or TCP to one collector.
//!
//! The caller's side ([`IpfixExporter::flow`]) copies the record into the
//! queue without blocking; a full queue drops the record and counts it. The
//! sender thread packs records into messages of at most the configured size
//! and sends one when it is full, when its oldest record waited
//! [`IpfixConfig::flush_interval`], or on [`IpfixExporter::flush`].
//!
//! - **UDP**: messages fit the path MTU (RFC 7011 §10.3.3); templates go in
//!   the first message and again every [`IpfixConfig::template_refresh`]. A
//!   failed send drops (and counts) that message's records.
//! - **TCP**: one transport session per connection, templates first and
//!   sequence numbers from 0. Before each message the sender checks that the
//!   collector has not closed the connection; a failed or timed-out write
//!   (a slow collector) closes it. The message is then sent again, whole, on
//!   a new connection, retried with exponential backoff. While the collector
//!   is away the queue fills and its overflow is counted. At
//!   [`IpfixExporter::finish`] the sender keeps trying for
//!   [`IpfixConfig::finish_timeout`] (connects and writes cut to what is
//!   left of it, so a stalled collector holds the exit no longer), then
//!   counts what is left as dropped.
//!   Data the collector's kernel acknowledged but the collector never read
//!   cannot be detected: IPFIX has no application-level acknowledgement.
//!
//! So at the end `records_sent + records_dropped` equals the records given.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::encode::{IpfixFlow, IpfixMode, MessageEncoder};
use crate::extract::FiveTupleKey;
use crate::tracker::{EndReason, FlowRecord};

/// Transport protocol to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpfixTransport {
    /// UDP datagrams, one message each.
    Udp,
    /// A TCP stream of messages, reconnected when it breaks.
    Tcp,
}

/// Settings of one exporter.
#[derive(Debug, Clone)]
pub struct IpfixConfig {
    /// UDP or TCP.
    pub transport: IpfixTransport,
    /// The collector's address.
    pub collector: SocketAddr,
    /// Biflow or unidirectional records.
    pub mode: IpfixMode,
    /// Observation domain ID (one per sensor).
    pub domain_id: u32,
    /// `ingressInterface` of every record.
    pub ingress_interface: u32,
    /// Path MTU to the collector, bytes (sizes UDP messages). Default 1500.
    pub mtu: usize,
    /// Records the queue holds. Default 65 536.
    pub queue_capacity: usize,
    /// Longest a record waits in a partly filled message. Default 1 s.
    pub flush_interval: Duration,
    /// UDP: templates are sent again after this long. Default 60 s.
    pub template_refresh: Duration,
    /// TCP: connect and write timeout. Default 2 s.
    pub io_timeout: Duration,
    /// TCP: longest wait between reconnection attempts. Default 5 s.
    pub max_backoff: Duration,
    /// How long [`IpfixExporter::finish`] keeps trying to send. Default 5 s.
    pub finish_timeout: Duration,
}

impl IpfixConfig {
    /// Defaults for a collector at `collector`.
    pub fn new(transport: IpfixTransport, collector: SocketAddr) -> Self {
        Self {
            transport,
            collector,
            mode: IpfixMode::Biflow,
            domain_id: 0,
            ingress_interface: 0,
            mtu: 1500,
            queue_capacity: 65_536,
            flush_interval: Duration::from_secs(1),
            template_refresh: Duration::from_secs(60),
            io_timeout: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
            finish_timeout: Duration::from_secs(5),
        }
    }

    /// Largest message: a UDP datagram within the MTU, or 16 KiB over TCP.
    fn max_message_len(&self) -> usize {
        match self.transport {
            IpfixTransport::Udp => {
                let headers = if self.collector.is_ipv6() { 48 } else { 28 };
                self.mtu.saturating_sub(headers).clamp(256, 65_507)
            }
            IpfixTransport::Tcp => 16_384,
        }
    }
}

/// Counters of an exporter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpfixStats {
    /// Flow records given to the exporter.
    pub records: u64,
    /// Flow records sent to the collector.
    pub records_sent: u64,
    /// Flow records dropped: queue overflow, failed sends, or still unsent
    /// when the finish timeout passed.
    pub records_dropped: u64,
    /// Of those, dropped because the queue was full.
    pub queue_overflow: u64,
    /// IPFIX messages sent.
    pub messages_sent: u64,
    /// TCP connections established.
    pub connections: u64,
}

/// Counters the sender thread updates once per message.
#[derive(Debug, Default)]
struct Shared {
    sent: AtomicU64,
    dropped: AtomicU64,
    messages: AtomicU64,
    connections: AtomicU64,
    closing: AtomicBool,
}

enum Command {
    Flow(IpfixFlow),
    Flush,
}

/// An IPFIX exporter to one collector: the caller copies each record into
/// a bounded queue without blocking (a full queue drops the record and
/// counts it), and a sender thread packs them into messages over UDP or TCP.
#[derive(Debug)]
pub struct IpfixExporter {
    tx: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    records: u64,
    overflow: u64,
    ingress_interface: u32,
}

impl IpfixExporter {
    /// Starts the sender thread. TCP connects from that thread, so a
    /// collector that is not up yet is not an error.
    ///
    /// # Errors
    ///
    /// Creating the UDP socket, or the thread.
    pub fn start(config: IpfixConfig) -> io::Result<Self> {
        let conn = match config.transport {
            IpfixTransport::Udp => {
                let any: SocketAddr = if config.collector.is_ipv6() {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(any)?;
                s.connect(config.collector)?;
                Conn::Udp(s)
            }
            IpfixTransport::Tcp => Conn::Tcp(None),
        };
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let ingress_interface = config.ingress_interface;
        let max_len = config.max_message_len();
        let sender = Sender {
            encoder: MessageEncoder::new(config.mode, config.domain_id, max_len),
            pending: Vec::with_capacity(max_len / 64),
            pending_len: 0,
            pending_since: None,
            max_len,
            conn,
            templates_at: None,
            backoff: BACKOFF_START,
            deadline: None,
            shared: Arc::clone(&shared),
            config,
        };
        let thread = std::thread::Builder::new()
            .name("ipfix-export".into())
            .spawn(move || sender.run(&rx))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            shared,
            records: 0,
            overflow: 0,
            ingress_interface,
        })
    }

    /// Queues one record (never blocks; counts it if the queue is full).
    pub fn flow(&mut self, flow: &FlowRecord<FiveTupleKey>, reason: EndReason) {
        self.records += 1;
        let f = IpfixFlow::new(flow, reason, self.ingress_interface);
        let queued = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.try_send(Command::Flow(f)).is_ok());
        if !queued {
            self.overflow += 1;
        }
    }

    /// Asks the sender to send its partly filled message now.
    pub fn flush(&mut self) {
        if let Some(tx) = &self.tx {
            // A full queue will be sent anyway.
            let _ = tx.try_send(Command::Flush);
        }
    }

    /// The counters now.
    pub fn stats(&self) -> IpfixStats {
        let s = &self.shared;
        IpfixStats {
            records: self.records,
            records_sent: s.sent.load(Ordering::Relaxed),
            records_dropped: s.dropped.load(Ordering::Relaxed) + self.overflow,
            queue_overflow: self.overflow,
            messages_sent: s.messages.load(Ordering::Relaxed),
            connections: s.connections.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued (giving up after the finish timeout) and stops.
    pub fn finish(mut self) -> IpfixStats {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            // A panicked sender has sent nothing more: its records count below.
            let _ = t.join();
        }
        let mut stats = self.stats();
        // Records the sender never took (it stopped early) are dropped too.
        let unaccounted = stats
            .records
            .saturating_sub(stats.records_sent + stats.records_dropped);
        stats.records_dropped += unaccounted;
        stats
    }
}

impl Drop for IpfixExporter {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const BACKOFF_START: Duration = Duration::from_millis(50);

#[derive(Debug)]
enum Conn {
    Udp(UdpSocket),
    Tcp(Option<TcpStream>),
}

/// The sender thread's state.
struct Sender {
    config: IpfixConfig,
    encoder: MessageEncoder,
    pending: Vec<IpfixFlow>,
    /// Bytes `pending` needs in a message, templates included.
    pending_len: usize,
    pending_since: Option<Instant>,
    max_len: usize,
    conn: Conn,
    /// When templates were last sent (UDP), or `None` if they are due.
    templates_at: Option<Instant>,
    backoff: Duration,
    /// Give-up time once the exporter is finishing.
    deadline: Option<Instant>,
    shared: Arc<Shared>,
}

fn export_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// `t`, cut to what is left until `deadline` (at least 1 ms: a zero
/// timeout means none).
fn cut(t: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => t
            .min(d.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1)),
        None => t,
    }
}

/// True if the collector closed (or broke) the connection.
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match s.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    closed || s.set_nonblocking(false).is_err()
}

impl Sender {
    fn run(mut self, rx: &Receiver<Command>) {
        loop {
            let wait = match self.pending_since {
                Some(t) => self.config.flush_interval.saturating_sub(t.elapsed()),
                None => self.config.flush_interval,
            };
            match rx.recv_timeout(wait) {
                Ok(Command::Flow(f)) => {
                    let len = f.encoded_len(self.encoder.mode());
                    if self.pending_len + len > self.max_len {
                        self.deliver();
                    }
                    if self.pending.is_empty() {
                        self.pending_len = self.encoder.overhead();
                        self.pending_since = Some(Instant::now());
                    }
                    self.pending.push(f);
                    self.pending_len += len;
                    if self
                        .pending_since
                        .is_some_and(|t| t.elapsed() >= self.config.flush_interval)
                    {
                        self.deliver();
                    }
                }
                Ok(Command::Flush) | Err(RecvTimeoutError::Timeout) => self.deliver(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.deliver();
                    return;
                }
            }
        }
    }

    /// Sends the pending records as one message, or counts them dropped.
    fn deliver(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let n = self.pending.len() as u64;
        let sent = match self.conn {
            Conn::Udp(_) => self.send_udp(),
            Conn::Tcp(_) => self.send_tcp(),
        };
        let counter = if sent {
            self.shared.messages.fetch_add(1, Ordering::Relaxed);
            &self.shared.sent
        } else {
            &self.shared.dropped
        };
        counter.fetch_add(n, Ordering::Relaxed);
        self.pending.clear();
        self.pending_since = None;
        self.pending_len = 0;
    }

    fn send_udp(&mut self) -> bool {
        let Conn::Udp(sock) = &self.conn else {
            return false;
        };
        let templates = self
            .templates_at
            .is_none_or(|t| t.elapsed() >= self.config.template_refresh);
        let msg = self.encoder.encode(&self.pending, templates, export_secs());
        let ok = sock.send(msg).is_ok();
        if ok && templates {
            self.templates_at = Some(Instant::now());
        }
        ok
    }

    /// Past the finish deadline (set when finishing starts)?
    fn give_up(&mut self) -> bool {
        if self.shared.closing.load(Ordering::Relaxed) && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.config.finish_timeout);
        }
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The I/O timeout, cut to what is left of the finish deadline, so
    /// closing never waits past it for a stalled collector.
    fn io_timeout(&self) -> Duration {
        cut(self.config.io_timeout, self.deadline)
    }

    fn connect(&mut self) -> Option<TcpStream> {
        let s = TcpStream::connect_timeout(&self.config.collector, self.io_timeout()).ok()?;
        s.set_write_timeout(Some(self.io_timeout())).ok()?;
        s.set_nodelay(true).ok()?;
        Some(s)
    }

    fn send_tcp(&mut self) -> bool {
        loop {
            if self.give_up() {
                return false;
            }
            let stream = match &mut self.conn {
                Conn::Tcp(Some(s)) if !peer_closed(s) => s,
                _ => {
                    self.conn = Conn::Tcp(None);
                    match self.connect() {
                        Some(s) => {
                            self.shared.connections.fetch_add(1, Ordering::Relaxed);
                            self.encoder.reset_session();
                            self.templates_at = None;
                            self.backoff = BACKOFF_START;
                            self.conn = Conn::Tcp(Some(s));
                        }
                        None => {
                            let pause = match self.deadline {
                                Some(d) => self
                                    .backoff
                                    .min(d.saturating_duration_since(Instant::now())),
                                None => self.backoff,
                            };
                            std::thread::sleep(pause);
                            self.backoff = (self.backoff * 2).min(self.config.max_backoff);
                        }
                    }
                    continue;
                }
            };
            if self.deadline.is_some() {
                // Finishing: a stalled collector gets no longer than the
                // deadline.
                let t = cut(self.config.io_timeout, self.deadline);
                let _ = stream.set_write_timeout(Some(t));
            }
            let templates = self.templates_at.is_none();
            let msg = self.encoder.encode(&self.pending, templates, export_secs());
            if stream.write_all(msg).is_ok() {
                self.templates_at = Some(Instant::now());
                return true;
            }
            // A partial message ruins the stream: start a new session.
            self.conn = Conn::Tcp(None);
        }
    }
}
