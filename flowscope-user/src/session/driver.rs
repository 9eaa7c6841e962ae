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
    /// The flow ended (both sides' streams, or [`SessionDriver::finish`]).
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
    fn with_parsers(n: usize) -> Self {
        Self {
            flows_detected: vec![0; n],
            parse_errors: vec![0; n],
            budget_exhausted: vec![0; n],
            bytes_parsed: vec![0; n],
            ..Self::default()
        }
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
        add(&mut self.flows_detected, &other.flows_detected);
        add(&mut self.parse_errors, &other.parse_errors);
        add(&mut self.budget_exhausted, &other.budget_exhausted);
        add(&mut self.bytes_parsed, &other.bytes_parsed);
        self.flows_undetected += other.flows_undetected;
        self.bytes_missed_while_probing += other.bytes_missed_while_probing;
        self.parsers.add(&other.parsers);
    }

    fn grow(&mut self) {
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

/// Adds `factory` to a driver's factories and a slot for it to each
/// per-parser counter; returns its index.
fn register<F: ?Sized>(
    factories: &mut Vec<Box<F>>,
    counters: &mut SessionCounters,
    factory: Box<F>,
) -> Result<usize, TooManyParsers> {
    if factories.len() == MAX_PARSERS {
        return Err(TooManyParsers);
    }
    factories.push(factory);
    counters.grow();
    Ok(factories.len() - 1)
}

fn port_matches(is_well_known: impl Fn(u16) -> bool, ports: FlowPorts) -> bool {
    is_well_known(ports.responder) || is_well_known(ports.initiator)
}

/// Per-flow state of a TCP flow's parsing; lives in the flow table entry.
pub struct StreamSession<R> {
    state: StreamState<R>,
    fed_bytes: u64,
    ended: [bool; 2],
}

enum StreamState<R> {
    Probing {
        window: ProbeWindow,
        /// The side whose first bytes fill the window.
        side: Option<Side>,
        rejected: u32,
        /// Bytes per side seen but not kept while probing.
        missed: [u64; 2],
    },
    Parsing {
        parser: Box<dyn SessionParser<R>>,
        factory: usize,
    },
    Stopped {
        reason: StopReason,
        factory: Option<usize>,
    },
}

impl<R> Default for StreamSession<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> StreamSession<R> {
    /// A flow no byte of which has been seen.
    pub const fn new() -> Self {
        Self {
            state: StreamState::Probing {
                window: ProbeWindow::new(),
                side: None,
                rejected: 0,
                missed: [0; 2],
            },
            fed_bytes: 0,
            ended: [false; 2],
        }
    }

    /// Parsing stopped for good: the flow's later bytes would yield nothing.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, StreamState::Stopped { .. })
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

/// Picks and feeds a [`SessionParser`] per TCP flow.
pub struct SessionDriver<R> {
    factories: Vec<Box<dyn SessionParserFactory<R>>>,
    spares: Spares<Box<dyn SessionParser<R>>>,
    config: DriverConfig,
    counters: SessionCounters,
}

impl<R> SessionDriver<R> {
    /// A driver with no parsers: every flow ends up [`StopReason::NoParser`].
    pub fn new(config: DriverConfig) -> Self {
        Self {
            factories: Vec::new(),
            spares: Spares::new(),
            config,
            counters: SessionCounters::with_parsers(0),
        }
    }

    /// Registers a factory; earlier ones win ties. Returns its index in the
    /// per-parser counters.
    ///
    /// # Errors
    ///
    /// [`TooManyParsers`] past [`MAX_PARSERS`].
    pub fn register(
        &mut self,
        factory: Box<dyn SessionParserFactory<R>>,
    ) -> Result<usize, TooManyParsers> {
        let index = register(&mut self.factories, &mut self.counters, factory)?;
        self.spares.add_factory();
        Ok(index)
    }

    /// Names of the registered parsers, in counter order.
    pub fn parser_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.iter().map(|f| f.name())
    }

    /// What the driver counted.
    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    /// Where `session` stands.
    pub fn state(&self, session: &StreamSession<R>) -> SessionState {
        let name = |i: usize| self.factories.get(i).map(|f| f.name());
        match &session.state {
            StreamState::Probing { .. } => SessionState::Probing,
            StreamState::Parsing { factory, .. } => {
                SessionState::Parsing(name(*factory).unwrap_or("unknown"))
            }
            StreamState::Stopped { reason, factory } => {
                SessionState::Stopped(*reason, factory.and_then(name))
            }
        }
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
            StreamState::Stopped { .. } => {}
            StreamState::Parsing { .. } => self.feed(session, side, data, ts, sink),
            StreamState::Probing {
                window,
                side: probe_side,
                missed,
                ..
            } => {
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
                    } else if let StreamState::Probing {
                        side: probed,
                        missed,
                        ..
                    } = &mut session.state
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
                } else if let StreamState::Probing {
                    side: Some(probed),
                    missed,
                    ..
                } = &mut session.state
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
        if let StreamState::Probing {
            side: probe_side,
            missed,
            ..
        } = &mut session.state
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
        if let StreamState::Parsing { parser, .. } = &mut session.state {
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
        if let StreamState::Probing {
            side: Some(probe_side),
            ..
        } = session.state
            && probe_side == side
        {
            self.decide(session, ports, true, ts, sink);
        }
        session.ended[side.index()] = true;
        if let StreamState::Parsing { parser, .. } = &mut session.state {
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
    /// session is now [`StreamState::Parsing`].
    fn decide(
        &mut self,
        session: &mut StreamSession<R>,
        ports: FlowPorts,
        last_chance: bool,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> bool {
        let StreamState::Probing {
            window,
            side: Some(side),
            rejected,
            missed,
        } = &mut session.state
        else {
            return matches!(session.state, StreamState::Parsing { .. });
        };
        let side = *side;
        if window.as_slice().is_empty() {
            // Probing moved to this side, which has sent nothing yet.
            if last_chance {
                self.stop(session, StopReason::NoParser);
            }
            return false;
        }
        let factories = &self.factories;
        let selection = select(
            factories.len(),
            rejected,
            last_chance,
            |i| port_matches(|p| factories[i].is_well_known_port(p), ports),
            |i| factories[i].probe(side, window.as_slice()),
        );
        match selection {
            Selection::Wait => false,
            Selection::NoParser if *missed == [0, 0] => {
                // No parser wants the first side's bytes and the other side
                // has sent nothing yet: probe the other side's first bytes
                // instead (an HTTP server answering a malformed request, a
                // server that speaks first). The first side's bytes reach
                // the chosen parser as a gap.
                let mut missed = [0; 2];
                missed[side.index()] = window.as_slice().len() as u64;
                session.state = StreamState::Probing {
                    window: ProbeWindow::new(),
                    side: Some(side.other()),
                    rejected: 0,
                    missed,
                };
                false
            }
            Selection::NoParser => {
                self.stop(session, StopReason::NoParser);
                false
            }
            Selection::Chosen(factory) => {
                let window = window.clone();
                let missed = *missed;
                self.counters.flows_detected[factory] += 1;
                let parser = self
                    .spares
                    .take(factory, || self.factories[factory].new_parser());
                session.state = StreamState::Parsing { parser, factory };
                for gap_side in Side::BOTH {
                    let len = missed[gap_side.index()];
                    if len > 0 && matches!(session.state, StreamState::Parsing { .. }) {
                        self.counters.bytes_missed_while_probing += len;
                        if let StreamState::Parsing { parser, .. } = &mut session.state {
                            let status = parser.on_gap(gap_side, len, ts, sink);
                            self.after(session, status);
                        }
                    }
                }
                self.feed(session, side, window.as_slice(), ts, sink);
                matches!(session.state, StreamState::Parsing { .. })
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
        let StreamState::Parsing { parser, factory } = &mut session.state else {
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
        if let (StopReason::ParseError, StreamState::Parsing { factory, .. }) =
            (reason, &session.state)
        {
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
            StreamState::Stopped { .. } => return,
            StreamState::Probing { window, missed, .. } => {
                if window.as_slice().is_empty() && *missed == [0, 0] {
                    (StopReason::NoPayload, None)
                } else {
                    self.counters.flows_undetected += 1;
                    (StopReason::NoParser, None)
                }
            }
            StreamState::Parsing { factory, .. } => (reason, Some(*factory)),
        };
        let stopped = StreamState::Stopped { reason, factory };
        if let StreamState::Parsing {
            mut parser,
            factory,
        } = std::mem::replace(&mut session.state, stopped)
        {
            parser.flush_counters(&mut self.counters.parsers);
            self.spares.keep(factory, parser, |p| p.reset());
        }
    }
}

/// Per-flow state of a UDP flow's parsing; lives in the flow table entry.
pub struct DatagramSession<R> {
    state: DatagramState<R>,
    fed_bytes: u64,
}

enum DatagramState<R> {
    Probing {
        rejected: u32,
        probes: u8,
    },
    Parsing {
        parser: Box<dyn DatagramParser<R>>,
        factory: usize,
    },
    Stopped {
        reason: StopReason,
        factory: Option<usize>,
    },
}

impl<R> Default for DatagramSession<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> DatagramSession<R> {
    /// A flow no datagram of which has been seen.
    pub const fn new() -> Self {
        Self {
            state: DatagramState::Probing {
                rejected: 0,
                probes: 0,
            },
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

/// Picks and feeds a [`DatagramParser`] per UDP flow.
///
/// Each datagram is probed on its own: a [`Probe::Certain`] verdict, or an
/// [`Probe::Unsure`] one from a factory whose well-known port the flow uses,
/// chooses the parser (datagrams are whole messages, so more bytes will not
/// help); otherwise up to [`DATAGRAM_PROBES`] datagrams are probed.
pub struct DatagramDriver<R> {
    factories: Vec<Box<dyn DatagramParserFactory<R>>>,
    spares: Spares<Box<dyn DatagramParser<R>>>,
    config: DriverConfig,
    counters: SessionCounters,
}

impl<R> DatagramDriver<R> {
    /// A driver with no parsers.
    pub fn new(config: DriverConfig) -> Self {
        Self {
            factories: Vec::new(),
            spares: Spares::new(),
            config,
            counters: SessionCounters::with_parsers(0),
        }
    }

    /// Registers a factory; earlier ones win ties. Returns its index in the
    /// per-parser counters.
    ///
    /// # Errors
    ///
    /// [`TooManyParsers`] past [`MAX_PARSERS`].
    pub fn register(
        &mut self,
        factory: Box<dyn DatagramParserFactory<R>>,
    ) -> Result<usize, TooManyParsers> {
        let index = register(&mut self.factories, &mut self.counters, factory)?;
        self.spares.add_factory();
        Ok(index)
    }

    /// Names of the registered parsers, in counter order.
    pub fn parser_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.iter().map(|f| f.name())
    }

    /// What the driver counted.
    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    /// Where `session` stands.
    pub fn state(&self, session: &DatagramSession<R>) -> SessionState {
        let name = |i: usize| self.factories.get(i).map(|f| f.name());
        match &session.state {
            DatagramState::Probing { .. } => SessionState::Probing,
            DatagramState::Parsing { factory, .. } => {
                SessionState::Parsing(name(*factory).unwrap_or("unknown"))
            }
            DatagramState::Stopped { reason, factory } => {
                SessionState::Stopped(*reason, factory.and_then(name))
            }
        }
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
        if let DatagramState::Probing { rejected, probes } = &mut session.state {
            if payload.is_empty() {
                // Nothing to probe.
                return;
            }
            *probes = probes.saturating_add(1);
            let factories = &self.factories;
            let selection = select(
                factories.len(),
                rejected,
                true,
                |i| port_matches(|p| factories[i].is_well_known_port(p), ports),
                |i| factories[i].probe(side, payload),
            );
            match selection {
                Selection::Chosen(factory) => {
                    self.counters.flows_detected[factory] += 1;
                    let parser = self
                        .spares
                        .take(factory, || self.factories[factory].new_parser());
                    session.state = DatagramState::Parsing { parser, factory };
                }
                Selection::NoParser
                    if *probes >= DATAGRAM_PROBES
                        || (0..factories.len()).all(|i| *rejected & (1 << i) != 0) =>
                {
                    self.counters.flows_undetected += 1;
                    session.state = DatagramState::Stopped {
                        reason: StopReason::NoParser,
                        factory: None,
                    };
                }
                Selection::NoParser | Selection::Wait => {}
            }
        }
        let DatagramState::Parsing { parser, factory } = &mut session.state else {
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
        let DatagramState::Parsing { factory, .. } = session.state else {
            return;
        };
        let stopped = DatagramState::Stopped {
            reason,
            factory: Some(factory),
        };
        if let DatagramState::Parsing { mut parser, .. } =
            std::mem::replace(&mut session.state, stopped)
        {
            parser.flush_counters(&mut self.counters.parsers);
            self.spares.keep(factory, parser, |p| p.reset());
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
            DatagramState::Stopped { .. } => return,
            DatagramState::Probing { probes: 0, .. } => StopReason::NoPayload,
            DatagramState::Probing { .. } => {
                self.counters.flows_undetected += 1;
                StopReason::NoParser
            }
            DatagramState::Parsing { parser, .. } => {
                parser.on_end(ts, sink);
                return self.stop(session, StopReason::Ended);
            }
        };
        session.state = DatagramState::Stopped {
            reason,
            factory: None,
        };
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
