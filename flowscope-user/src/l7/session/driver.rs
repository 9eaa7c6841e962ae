//! Choosing a parser per flow (port hint plus content probe), feeding it, and
//! enforcing the per-flow parser budget.
//!
//! The driver owns the factories and the counters; the per-flow state
//! ([`StreamSession`], [`DatagramSession`]) lives in the flow table entry and
//! is passed in by `&mut` on every call, so the driver keeps no per-flow
//! storage of its own.

use super::probe_window::ProbeWindow;
use super::{
    DatagramParser, DatagramParserFactory, ParseStatus, Probe, RecordSink, SessionParser,
    SessionParserFactory, Side,
};
use crate::l7::L7Counters;
use crate::view::Timestamp;

/// Most factories one driver takes (the probe keeps a bitmask of rejections).
pub const MAX_PARSERS: usize = 32;

/// Datagrams probed before a UDP flow with only [`Probe::Unsure`] verdicts
/// and no port hint is given up.
pub const DATAGRAM_PROBES: u8 = 4;

/// Driver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Bytes (both sides together) a flow's parser is fed before parsing
    /// stops; the flow itself is still tracked. Gaps do not count.
    /// Default 1 MiB.
    pub budget_bytes: u64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            budget_bytes: 1 << 20,
        }
    }
}

/// The flow's ports, for the well-known-port hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowPorts {
    /// The initiator's (client's) port.
    pub initiator: u16,
    /// The responder's (server's) port.
    pub responder: u16,
}

/// Why a flow's parsing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The flow ended before it carried a payload byte: nothing to probe.
    NoPayload,
    /// No factory recognised the flow's payload (Suricata's `failed`).
    NoParser,
    /// The parser returned [`ParseStatus::Done`].
    Done,
    /// The parser returned [`ParseStatus::Error`].
    ParseError,
    /// The flow used up [`DriverConfig::budget_bytes`].
    BudgetExhausted,
    /// The flow ended (both sides' streams, or the driver's `finish`).
    Ended,
}

impl StopReason {
    /// Static label for logs and metrics (`reason` label).
    pub const fn label(self) -> &'static str {
        match self {
            Self::NoPayload => "no_payload",
            Self::NoParser => "no_parser",
            Self::Done => "done",
            Self::ParseError => "parse_error",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Ended => "ended",
        }
    }
}

/// Where a flow's parsing stands, for summaries and the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// No parser chosen yet.
    Probing,
    /// Fed to the parser of this protocol.
    Parsing(&'static str),
    /// No longer parsed; the protocol if one had been chosen.
    Stopped(StopReason, Option<&'static str>),
}

/// What a driver counted, per parser in registration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Each parser's name, in counter order.
    pub names: Vec<&'static str>,
    /// Flows each parser was chosen for.
    pub flows_detected: Vec<u64>,
    /// Flows each parser stopped with [`ParseStatus::Error`].
    pub parse_errors: Vec<u64>,
    /// Flows each parser stopped because the budget ran out.
    pub budget_exhausted: Vec<u64>,
    /// Bytes (or datagram payload bytes) fed to each parser.
    pub bytes_parsed: Vec<u64>,
    /// Flows with payload no parser recognised.
    pub flows_undetected: u64,
    /// Bytes of a side that were not fed because a parser was chosen only
    /// after them while probing the other side (announced as a gap).
    pub bytes_missed_while_probing: u64,
    /// What the parsers counted, handed over when each was dropped.
    pub parsers: L7Counters,
}

impl SessionCounters {
    /// `per_parser` (one of the per-parser vectors) with each parser's
    /// name.
    pub fn by_name<'a>(
        &'a self,
        per_parser: &'a [u64],
    ) -> impl Iterator<Item = (&'static str, u64)> + 'a {
        self.names.iter().copied().zip(per_parser.iter().copied())
    }

    /// Adds `other` (another worker's driver, with the same parsers
    /// registered in the same order) into `self`.
    pub fn merge(&mut self, other: &Self) {
        fn add(a: &mut Vec<u64>, b: &[u64]) {
            if a.len() < b.len() {
                a.resize(b.len(), 0);
            }
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        if let Some(more) = other.names.get(self.names.len()..) {
            self.names.extend_from_slice(more);
        }
        add(&mut self.flows_detected, &other.flows_detected);
        add(&mut self.parse_errors, &other.parse_errors);
        add(&mut self.budget_exhausted, &other.budget_exhausted);
        add(&mut self.bytes_parsed, &other.bytes_parsed);
        self.flows_undetected += other.flows_undetected;
        self.bytes_missed_while_probing += other.bytes_missed_while_probing;
        self.parsers.add(&other.parsers);
    }

    fn grow(&mut self, name: &'static str) {
        self.names.push(name);
        self.flows_detected.push(0);
        self.parse_errors.push(0);
        self.budget_exhausted.push(0);
        self.bytes_parsed.push(0);
    }
}

/// Returned when a driver already holds [`MAX_PARSERS`] factories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a session driver takes at most {MAX_PARSERS} parser factories")]
pub struct TooManyParsers;

/// Outcome of one probing round.
enum Selection {
    Chosen(usize),
    Wait,
    NoParser,
}

/// Probes the factories not yet rejected, those whose well-known port
/// matches first (responder port, then initiator port). Returns the first
/// [`Probe::Certain`]; if none, and `last_chance` is set or every factory
/// rejected the bytes, the first port-matching [`Probe::Unsure`] or
/// nothing; otherwise asks to wait for more bytes.
fn select(
    count: usize,
    rejected: &mut u32,
    last_chance: bool,
    port_match: impl Fn(usize) -> bool,
    mut probe: impl FnMut(usize) -> Probe,
) -> Selection {
    let mut unsure_with_port = None;
    for pass_port in [true, false] {
        for i in (0..count).filter(|&i| port_match(i) == pass_port) {
            if *rejected & (1 << i) != 0 {
                continue;
            }
            match probe(i) {
                Probe::Certain => return Selection::Chosen(i),
                Probe::NotForUs => *rejected |= 1 << i,
                Probe::Unsure if pass_port && unsure_with_port.is_none() => {
                    unsure_with_port = Some(i);
                }
                Probe::Unsure => {}
            }
        }
    }
    let all_rejected = (0..count).all(|i| *rejected & (1 << i) != 0);
    match (last_chance || all_rejected, unsure_with_port) {
        (true, Some(i)) => Selection::Chosen(i),
        (true, None) => Selection::NoParser,
        (false, _) if all_rejected => Selection::NoParser,
        (false, _) => Selection::Wait,
    }
}

/// What a driver needs of its factories and parsers, whichever the
/// transport: implemented for the TCP and UDP trait objects only.
mod transport {
    use super::{
        DatagramParser, DatagramParserFactory, Probe, SessionParser, SessionParserFactory,
    };
    use super::{L7Counters, Side};

    /// A factory of parsers `P`.
    pub trait Factory<P: ?Sized> {
        fn name(&self) -> &'static str;
        fn is_well_known_port(&self, port: u16) -> bool;
        fn probe(&self, side: Side, bytes: &[u8]) -> Probe;
        fn new_parser(&mut self) -> Box<P>;
    }

    /// A parser a driver stops.
    pub trait Parser {
        fn flush_counters(&mut self, into: &mut L7Counters);
        fn reset(&mut self) -> bool;
    }

    macro_rules! forward {
        ($factory:ident, $parser:ident) => {
            impl<R> Factory<dyn $parser<R>> for dyn $factory<R> {
                fn name(&self) -> &'static str {
                    $factory::name(self)
                }
                fn is_well_known_port(&self, port: u16) -> bool {
                    $factory::is_well_known_port(self, port)
                }
                fn probe(&self, side: Side, bytes: &[u8]) -> Probe {
                    $factory::probe(self, side, bytes)
                }
                fn new_parser(&mut self) -> Box<dyn $parser<R>> {
                    $factory::new_parser(self)
                }
            }

            impl<R> Parser for dyn $parser<R> {
                fn flush_counters(&mut self, into: &mut L7Counters) {
                    $parser::flush_counters(self, into);
                }
                fn reset(&mut self) -> bool {
                    $parser::reset(self)
                }
            }
        };
    }

    forward!(SessionParserFactory, SessionParser);
    forward!(DatagramParserFactory, DatagramParser);
}

use transport::{Factory, Parser};

/// Where a flow's parsing stands: probing (with the transport's own
/// probing state), fed to a parser, or stopped.
enum Phase<P: ?Sized, Probing> {
    Probing(Probing),
    Parsing {
        parser: Box<P>,
        factory: usize,
    },
    Stopped {
        reason: StopReason,
        factory: Option<usize>,
    },
}

/// Bytes of a parser [`Phase::prefetch`] brings in, at most: all of an
/// HTTP parser (424 bytes), whose every part a message touches.
const PARSER_PREFETCH_BYTES: usize = 512;

impl<P: ?Sized, Probing> Phase<P, Probing> {
    /// Prefetches the parser's own state (it lives apart from the flow's
    /// slot), if there is a parser: every cache line it spans, up to
    /// [`PARSER_PREFETCH_BYTES`].
    #[inline(always)]
    fn prefetch(&self) {
        if let Self::Parsing { parser, .. } = self {
            let at = std::ptr::from_ref::<P>(parser).cast::<u8>();
            let skew = at.addr() % 64;
            let len = (skew + std::mem::size_of_val::<P>(parser)).min(PARSER_PREFETCH_BYTES);
            crate::tracker::prefetch(at.wrapping_sub(skew), len);
        }
    }
}

/// Per-flow state of a TCP flow's parsing; lives in the flow table entry.
pub struct StreamSession<R> {
    state: Phase<dyn SessionParser<R>, StreamProbe>,
    fed_bytes: u64,
    ended: [bool; 2],
}

/// A TCP flow's probing.
struct StreamProbe {
    window: ProbeWindow,
    /// The side whose first bytes fill the window.
    side: Option<Side>,
    rejected: u32,
    /// Bytes per side seen but not kept while probing.
    missed: [u64; 2],
}

impl<R> Default for StreamSession<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> StreamSession<R> {
    /// Prefetches the flow's parser, if it has one: its next packet is due.
    #[inline(always)]
    pub fn prefetch(&self) {
        self.state.prefetch();
    }

    /// Prefetches what the flow's parser keeps apart from itself
    /// ([`SessionParser::prefetch`]), once [`prefetch`](Self::prefetch)
    /// has brought the parser in.
    #[inline(always)]
    pub fn prefetch_parser_data(&self) {
        if let Phase::Parsing { parser, .. } = &self.state {
            parser.prefetch();
        }
    }

    /// A flow no byte of which has been seen.
    pub const fn new() -> Self {
        Self {
            state: Phase::Probing(StreamProbe {
                window: ProbeWindow::new(),
                side: None,
                rejected: 0,
                missed: [0; 2],
            }),
            fed_bytes: 0,
            ended: [false; 2],
        }
    }

    /// Parsing stopped for good: the flow's later bytes would yield nothing.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, Phase::Stopped { .. })
    }

    /// Bytes fed to the parser so far (both sides).
    pub fn fed_bytes(&self) -> u64 {
        self.fed_bytes
    }
}

impl<R> std::fmt::Debug for StreamSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSession")
            .field("fed_bytes", &self.fed_bytes)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Parsers kept for reuse per factory, at most (see
/// [`SessionParser::reset`] and [`DatagramParser::reset`]).
const SPARE_PARSERS: usize = 64;

/// Parsers of ended flows, reset, by factory: at most [`SPARE_PARSERS`]
/// each, handed to the factory's next flows. Both drivers keep one.
struct Spares<P>(Vec<Vec<P>>);

impl<P> Spares<P> {
    const fn new() -> Self {
        Self(Vec::new())
    }

    /// Room for the parsers of one more factory.
    fn add_factory(&mut self) {
        self.0.push(Vec::new());
    }

    /// A kept parser of `factory`, else `new()`.
    fn take(&mut self, factory: usize, new: impl FnOnce() -> P) -> P {
        self.0
            .get_mut(factory)
            .and_then(Vec::pop)
            .unwrap_or_else(new)
    }

    /// Keeps `parser` of `factory` when there is room and `reset` makes it
    /// a fresh one; drops it otherwise.
    fn keep(&mut self, factory: usize, mut parser: P, reset: impl FnOnce(&mut P) -> bool) {
        if let Some(kept) = self.0.get_mut(factory)
            && kept.len() < SPARE_PARSERS
            && reset(&mut parser)
        {
            kept.push(parser);
        }
    }
}

/// Picks and feeds a parser per flow: [`SessionDriver`] for TCP flows,
/// [`DatagramDriver`] for UDP flows. It owns the factories `F`, the parsers
/// `P` kept for reuse and the counters.
pub struct Driver<F: ?Sized, P: ?Sized> {
    factories: Vec<Box<F>>,
    spares: Spares<Box<P>>,
    config: DriverConfig,
    counters: SessionCounters,
}

/// Picks and feeds a [`SessionParser`] per TCP flow.
pub type SessionDriver<R> = Driver<dyn SessionParserFactory<R>, dyn SessionParser<R>>;

/// Picks and feeds a [`DatagramParser`] per UDP flow.
///
/// Each datagram is probed on its own: a [`Probe::Certain`] verdict, or an
/// [`Probe::Unsure`] one from a factory whose well-known port the flow uses,
/// chooses the parser (datagrams are whole messages, so more bytes will not
/// help); otherwise up to [`DATAGRAM_PROBES`] datagrams are probed.
pub type DatagramDriver<R> = Driver<dyn DatagramParserFactory<R>, dyn DatagramParser<R>>;

impl<F: ?Sized + Factory<P>, P: ?Sized + Parser> Driver<F, P> {
    /// A driver with no parsers: every flow ends up [`StopReason::NoParser`].
    pub fn new(config: DriverConfig) -> Self {
        Self {
            factories: Vec::new(),
            spares: Spares::new(),
            config,
            counters: SessionCounters::default(),
        }
    }

    /// Registers a factory; earlier ones win ties. Returns its index in the
    /// per-parser counters.
    ///
    /// # Errors
    ///
    /// [`TooManyParsers`] past [`MAX_PARSERS`].
    pub fn register(&mut self, factory: Box<F>) -> Result<usize, TooManyParsers> {
        if self.factories.len() == MAX_PARSERS {
            return Err(TooManyParsers);
        }
        self.counters.grow(factory.name());
        self.factories.push(factory);
        self.spares.add_factory();
        Ok(self.factories.len() - 1)
    }

    /// What the driver counted.
    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    /// Where a flow in `phase` stands.
    fn state_of<Probing>(&self, phase: &Phase<P, Probing>) -> SessionState {
        let name = |i: usize| self.factories.get(i).map(|f| f.name());
        match phase {
            Phase::Probing(_) => SessionState::Probing,
            Phase::Parsing { factory, .. } => {
                SessionState::Parsing(name(*factory).unwrap_or("unknown"))
            }
            Phase::Stopped { reason, factory } => {
                SessionState::Stopped(*reason, factory.and_then(name))
            }
        }
    }

    /// Probes `bytes` of `side` with the factories `rejected` leaves (see
    /// [`select`]).
    fn choose(
        &self,
        rejected: &mut u32,
        last_chance: bool,
        ports: FlowPorts,
        side: Side,
        bytes: &[u8],
    ) -> Selection {
        let factories = &self.factories;
        select(
            factories.len(),
            rejected,
            last_chance,
            |i| {
                let f = &factories[i];
                f.is_well_known_port(ports.responder) || f.is_well_known_port(ports.initiator)
            },
            |i| factories[i].probe(side, bytes),
        )
    }

    /// `factory` was chosen: counted, and its parser (a kept one, or new)
    /// feeds the flow.
    fn start<Probing>(&mut self, phase: &mut Phase<P, Probing>, factory: usize) {
        self.counters.flows_detected[factory] += 1;
        let parser = self
            .spares
            .take(factory, || self.factories[factory].new_parser());
        *phase = Phase::Parsing { parser, factory };
    }

    /// Stops `phase` with `reason` and `factory`; a parser it had hands
    /// over its counters and, when it resets, is kept for another flow.
    fn retire<Probing>(
        &mut self,
        phase: &mut Phase<P, Probing>,
        reason: StopReason,
        factory: Option<usize>,
    ) {
        let stopped = Phase::Stopped { reason, factory };
        if let Phase::Parsing {
            mut parser,
            factory,
        } = std::mem::replace(phase, stopped)
        {
            parser.flush_counters(&mut self.counters.parsers);
            self.spares.keep(factory, parser, |p| p.reset());
        }
    }
}

impl<R> SessionDriver<R> {
    /// Where `session` stands.
    pub fn state(&self, session: &StreamSession<R>) -> SessionState {
        self.state_of(&session.state)
    }

    /// In-order bytes of `side` from the reassembler.
    pub fn on_data(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        side: Side,
        data: &[u8],
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        if data.is_empty() || session.ended[side.index()] {
            return;
        }
        match &mut session.state {
            Phase::Stopped { .. } => {}
            Phase::Parsing { .. } => self.feed(session, side, data, ts, sink),
            Phase::Probing(StreamProbe {
                window,
                side: probe_side,
                missed,
                ..
            }) => {
                let owner = *probe_side.get_or_insert(side);
                if owner != side && window.as_slice().is_empty() {
                    // The first side was rejected; probing waits for the
                    // other side's first bytes.
                    missed[side.index()] += data.len() as u64;
                    return;
                }
                if owner != side {
                    // The other side answers: the probed side's first
                    // message is as complete as it will get, so decide now
                    // and, with a parser, feed the answer instead of
                    // losing it.
                    if self.decide(session, ports, true, ts, sink) {
                        self.feed(session, side, data, ts, sink);
                    } else if let Phase::Probing(StreamProbe {
                        side: probed,
                        missed,
                        ..
                    }) = &mut session.state
                    {
                        if *probed == Some(side) {
                            // Probing moved to this side: probe these bytes
                            // (once: this side now owns the window).
                            self.on_data(session, ports, side, data, ts, sink);
                        } else {
                            missed[side.index()] += data.len() as u64;
                        }
                    }
                    return;
                }
                let taken = window.append(data);
                let last_chance = window.is_full();
                let rest = data.get(taken..).unwrap_or_default();
                if self.decide(session, ports, last_chance, ts, sink) {
                    self.feed(session, side, rest, ts, sink);
                } else if let Phase::Probing(StreamProbe {
                    side: Some(probed),
                    missed,
                    ..
                }) = &mut session.state
                    && *probed != side
                {
                    // Probing moved to the other side: these bytes are
                    // missed like the window's.
                    missed[side.index()] += rest.len() as u64;
                }
            }
        }
    }

    /// `len` bytes of `side` the reassembler never saw or had to drop.
    pub fn on_gap(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        side: Side,
        len: u64,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        if len == 0 || session.ended[side.index()] {
            return;
        }
        if let Phase::Probing(StreamProbe {
            side: probe_side,
            missed,
            ..
        }) = &mut session.state
        {
            if *probe_side != Some(side) {
                // Before this side's first probed byte: announced when a
                // parser is chosen.
                missed[side.index()] += len;
                return;
            }
            // The probed bytes end here: decide with what we have.
            if !self.decide(session, ports, true, ts, sink) {
                return;
            }
        }
        if let Phase::Parsing { parser, .. } = &mut session.state {
            let status = parser.on_gap(side, len, ts, sink);
            self.after(session, status);
        }
    }

    /// `side`'s stream ended (FIN or RST seen, after the reassembler
    /// delivered everything it could).
    pub fn on_end(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        side: Side,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        if session.ended[side.index()] {
            return;
        }
        if let Phase::Probing(StreamProbe {
            side: Some(probe_side),
            ..
        }) = session.state
            && probe_side == side
        {
            self.decide(session, ports, true, ts, sink);
        }
        session.ended[side.index()] = true;
        if let Phase::Parsing { parser, .. } = &mut session.state {
            parser.on_end(side, ts, sink);
        }
        if session.ended == [true, true] {
            self.stop(session, StopReason::Ended);
        }
    }

    /// The flow ends (idle timeout, eviction, shutdown): ends both sides'
    /// streams and frees the parser.
    pub fn finish(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        for side in Side::BOTH {
            self.on_end(session, ports, side, ts, sink);
        }
    }

    /// Runs the probe on the window; on a choice builds the parser and
    /// replays the missed bytes (as gaps) and the window. True if the
    /// session is now [`Phase::Parsing`].
    fn decide(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        last_chance: bool,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> bool {
        let Phase::Probing(StreamProbe {
            window,
            side: Some(side),
            rejected,
            missed,
        }) = &mut session.state
        else {
            return matches!(session.state, Phase::Parsing { .. });
        };
        let side = *side;
        if window.as_slice().is_empty() {
            // Probing moved to this side, which has sent nothing yet.
            if last_chance {
                self.stop(session, StopReason::NoParser);
            }
            return false;
        }
        match self.choose(rejected, last_chance, ports, side, window.as_slice()) {
            Selection::Wait => false,
            Selection::NoParser if *missed == [0, 0] => {
                // No parser wants the first side's bytes and the other side
                // has sent nothing yet: probe the other side's first bytes
                // instead (an HTTP server answering a malformed request, a
                // server that speaks first). The first side's bytes reach
                // the chosen parser as a gap.
                let mut missed = [0; 2];
                missed[side.index()] = window.as_slice().len() as u64;
                session.state = Phase::Probing(StreamProbe {
                    window: ProbeWindow::new(),
                    side: Some(side.other()),
                    rejected: 0,
                    missed,
                });
                false
            }
            Selection::NoParser => {
                self.stop(session, StopReason::NoParser);
                false
            }
            Selection::Chosen(factory) => {
                let window = window.clone();
                let missed = *missed;
                self.start(&mut session.state, factory);
                for gap_side in Side::BOTH {
                    let len = missed[gap_side.index()];
                    if len > 0 && matches!(session.state, Phase::Parsing { .. }) {
                        self.counters.bytes_missed_while_probing += len;
                        if let Phase::Parsing { parser, .. } = &mut session.state {
                            let status = parser.on_gap(gap_side, len, ts, sink);
                            self.after(session, status);
                        }
                    }
                }
                self.feed(session, side, window.as_slice(), ts, sink);
                matches!(session.state, Phase::Parsing { .. })
            }
        }
    }

    /// Feeds in-order bytes to the parser within the budget.
    fn feed(
        &mut self,
        session: &mut StreamSession<R>,
        side: Side,
        data: &[u8],
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        let Phase::Parsing { parser, factory } = &mut session.state else {
            return;
        };
        if data.is_empty() {
            return;
        }
        let remaining = self.config.budget_bytes.saturating_sub(session.fed_bytes);
        let allowed = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let status = parser.on_data(side, &data[..allowed], ts, sink);
        session.fed_bytes += allowed as u64;
        self.counters.bytes_parsed[*factory] += allowed as u64;
        if status == ParseStatus::Continue && session.fed_bytes >= self.config.budget_bytes {
            for end_side in Side::BOTH {
                if !session.ended[end_side.index()] {
                    parser.on_end(end_side, ts, sink);
                }
            }
            self.counters.budget_exhausted[*factory] += 1;
            self.stop(session, StopReason::BudgetExhausted);
            return;
        }
        self.after(session, status);
    }

    /// Applies a parser's status.
    fn after(&mut self, session: &mut StreamSession<R>, status: ParseStatus) {
        let reason = match status {
            ParseStatus::Continue => return,
            ParseStatus::Done => StopReason::Done,
            ParseStatus::Error => StopReason::ParseError,
        };
        if let (StopReason::ParseError, Phase::Parsing { factory, .. }) = (reason, &session.state) {
            self.counters.parse_errors[*factory] += 1;
        }
        self.stop(session, reason);
    }

    /// Drops the parser and records why (a flow still probing has no
    /// parser: [`StopReason::NoParser`], or [`StopReason::NoPayload`] when
    /// it sent nothing).
    /// A parser that resets is kept for another flow.
    fn stop(&mut self, session: &mut StreamSession<R>, reason: StopReason) {
        let (reason, factory) = match &session.state {
            Phase::Stopped { .. } => return,
            Phase::Probing(StreamProbe { window, missed, .. }) => {
                if window.as_slice().is_empty() && *missed == [0, 0] {
                    (StopReason::NoPayload, None)
                } else {
                    self.counters.flows_undetected += 1;
                    (StopReason::NoParser, None)
                }
            }
            Phase::Parsing { factory, .. } => (reason, Some(*factory)),
        };
        self.retire(&mut session.state, reason, factory);
    }
}

/// Per-flow state of a UDP flow's parsing; lives in the flow table entry.
pub struct DatagramSession<R> {
    state: Phase<dyn DatagramParser<R>, DatagramProbe>,
    fed_bytes: u64,
}

/// A UDP flow's probing.
struct DatagramProbe {
    rejected: u32,
    probes: u8,
}

impl<R> Default for DatagramSession<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> DatagramSession<R> {
    /// Prefetches the flow's parser, if it has one: its next packet is due.
    #[inline(always)]
    pub fn prefetch(&self) {
        self.state.prefetch();
    }

    /// A flow no datagram of which has been seen.
    pub const fn new() -> Self {
        Self {
            state: Phase::Probing(DatagramProbe {
                rejected: 0,
                probes: 0,
            }),
            fed_bytes: 0,
        }
    }

    /// Payload bytes fed to the parser so far.
    pub fn fed_bytes(&self) -> u64 {
        self.fed_bytes
    }
}

impl<R> std::fmt::Debug for DatagramSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramSession")
            .field("fed_bytes", &self.fed_bytes)
            .finish_non_exhaustive()
    }
}

impl<R> DatagramDriver<R> {
    /// Where `session` stands.
    pub fn state(&self, session: &DatagramSession<R>) -> SessionState {
        self.state_of(&session.state)
    }

    /// One UDP payload sent by `side`.
    pub fn on_datagram(
        &mut self,
        session: &mut DatagramSession<R>,
        ports: FlowPorts,
        side: Side,
        payload: &[u8],
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        if let Phase::Probing(DatagramProbe { rejected, probes }) = &mut session.state {
            if payload.is_empty() {
                // Nothing to probe.
                return;
            }
            *probes = probes.saturating_add(1);
            match self.choose(rejected, true, ports, side, payload) {
                Selection::Chosen(factory) => self.start(&mut session.state, factory),
                Selection::NoParser
                    if *probes >= DATAGRAM_PROBES
                        || (0..self.factories.len()).all(|i| *rejected & (1 << i) != 0) =>
                {
                    self.counters.flows_undetected += 1;
                    self.retire(&mut session.state, StopReason::NoParser, None);
                }
                Selection::NoParser | Selection::Wait => {}
            }
        }
        let Phase::Parsing { parser, factory } = &mut session.state else {
            return;
        };
        let factory = *factory;
        if session.fed_bytes >= self.config.budget_bytes {
            parser.on_end(ts, sink);
            self.counters.budget_exhausted[factory] += 1;
            self.stop(session, StopReason::BudgetExhausted);
            return;
        }
        let status = parser.on_datagram(side, payload, ts, sink);
        session.fed_bytes += payload.len() as u64;
        self.counters.bytes_parsed[factory] += payload.len() as u64;
        let reason = match status {
            ParseStatus::Continue => return,
            ParseStatus::Done => StopReason::Done,
            ParseStatus::Error => {
                self.counters.parse_errors[factory] += 1;
                StopReason::ParseError
            }
        };
        self.stop(session, reason);
    }

    /// Stops a parsing session for `reason`: its parser's counters are
    /// added up, and a parser that resets is kept for another flow.
    fn stop(&mut self, session: &mut DatagramSession<R>, reason: StopReason) {
        if let Phase::Parsing { factory, .. } = session.state {
            self.retire(&mut session.state, reason, Some(factory));
        }
    }

    /// The flow ends: lets the parser flush and frees it.
    pub fn finish(
        &mut self,
        session: &mut DatagramSession<R>,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) {
        let reason = match &mut session.state {
            Phase::Stopped { .. } => return,
            Phase::Probing(DatagramProbe { probes: 0, .. }) => StopReason::NoPayload,
            Phase::Probing(_) => {
                self.counters.flows_undetected += 1;
                StopReason::NoParser
            }
            Phase::Parsing { parser, .. } => {
                parser.on_end(ts, sink);
                return self.stop(session, StopReason::Ended);
            }
        };
        self.retire(&mut session.state, reason, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::{HttpFactory, L7Record, TlsFactory};

    /// An HTTP and TLS driver, a fresh session, its output and the ports of
    /// a client at 46564 talking to `responder`.
    fn setup(
        responder: u16,
    ) -> (
        SessionDriver<L7Record>,
        StreamSession<L7Record>,
        Vec<L7Record>,
        FlowPorts,
    ) {
        let mut d = SessionDriver::new(DriverConfig::default());
        d.register(Box::new(HttpFactory::default())).unwrap();
        d.register(Box::new(TlsFactory::default())).unwrap();
        let p = FlowPorts {
            initiator: 46564,
            responder,
        };
        (d, StreamSession::new(), Vec::new(), p)
    }

    #[test]
    fn a_rejected_request_on_a_claimed_port_lets_the_answer_choose() {
        let (mut d, mut s, mut out, p) = setup(80);
        let t = Timestamp(1);
        let request = b"OPTIONSHTTP/1.1\nHost: www.example.org\n\n";
        d.on_data(&mut s, p, Side::Initiator, request, t, &mut out);
        assert_eq!(d.state(&s), SessionState::Probing);
        // More of the rejected side while waiting: missed as well.
        d.on_data(&mut s, p, Side::Initiator, b"x", t, &mut out);
        let answer = b"HTTP/1.0 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
        d.on_data(&mut s, p, Side::Responder, answer, t, &mut out);
        assert_eq!(d.state(&s), SessionState::Parsing("http"));
        assert_eq!(
            d.counters().bytes_missed_while_probing,
            request.len() as u64 + 1
        );
        d.finish(&mut s, p, t, &mut out);
        let [L7Record::Http(h)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!((h.http_method(), h.status, h.length), (None, Some(400), 3));
    }

    #[test]
    fn a_side_nobody_wants_lets_the_other_side_choose_on_any_port() {
        let (mut d, mut s, mut out, p) = setup(9);
        let t = Timestamp(1);
        d.on_data(&mut s, p, Side::Initiator, b"\x00\x01binary", t, &mut out);
        assert_eq!(d.state(&s), SessionState::Probing);
        let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        d.on_data(&mut s, p, Side::Responder, answer, t, &mut out);
        assert_eq!(d.state(&s), SessionState::Parsing("http"));
        d.finish(&mut s, p, t, &mut out);
        let [L7Record::Http(h)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(h.status, Some(400));
        assert_eq!(d.counters().bytes_missed_while_probing, 8);
    }

    #[test]
    fn a_flow_without_payload_is_not_undetected() {
        let (mut d, mut s, mut out, p) = setup(80);
        d.finish(&mut s, p, Timestamp(1), &mut out);
        assert_eq!(
            d.state(&s),
            SessionState::Stopped(StopReason::NoPayload, None)
        );
        assert_eq!(d.counters().flows_undetected, 0);
    }

    #[test]
    fn an_answer_nobody_wants_either_stops_parsing() {
        let (mut d, mut s, mut out, p) = setup(80);
        let t = Timestamp(1);
        d.on_data(&mut s, p, Side::Initiator, b"\x00\x01binary", t, &mut out);
        d.on_data(&mut s, p, Side::Responder, b"\x00\x02binary", t, &mut out);
        assert_eq!(
            d.state(&s),
            SessionState::Stopped(StopReason::NoParser, None)
        );
        assert!(out.is_empty());
        assert_eq!(d.counters().flows_undetected, 1);
    }
}
