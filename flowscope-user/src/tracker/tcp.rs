//! TCP per-flow state: the flow-level state machine, Zeek's per-endpoint
//! states (for `conn_state`) and the history letters of each segment.

use crate::extractor::{TcpFlags, TcpInfo};
use crate::tracker::event::{FlowSide, FlowState};
use crate::tracker::history::{History, HistoryLetter};

/// One endpoint's state in Zeek's terms (what `conn_state` is computed from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EndpointState {
    /// Nothing sent yet.
    #[default]
    Inactive,
    /// Sent a SYN.
    SynSent,
    /// The initiator sent a SYN-ACK (Zeek's `SYN_ACK_SENT`).
    SynAckSent,
    /// Sent packets without being seen to open (mid-stream).
    Partial,
    /// Part of an established connection.
    Established,
    /// Sent a FIN.
    Closed,
    /// Sent a RST.
    Reset,
}

impl EndpointState {
    /// Zeek's "inactive" for `conn_state`: nothing or only mid-stream packets.
    const fn inactive(self) -> bool {
        matches!(self, Self::Inactive | Self::Partial)
    }
}

/// TCP state of one flow.
///
/// `repr(C)` with what an ordinary segment reads first (endpoint states,
/// FIN bits); see [`FlowRecord`](super::FlowRecord)'s layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TcpTrack {
    /// Zeek endpoint state, indexed by [`FlowSide::index`].
    pub endpoint: [EndpointState; 2],
    /// Bit per side: FIN seen.
    fin_seen: u8,
    /// Bit per side: that side's FIN acknowledged by the other.
    fin_acked: u8,
    /// Sequence number just after each side's FIN.
    fin_end: [u32; 2],
    /// Sequence number of each side's last SYN, FIN end and RST (history repeats).
    last_syn: [u32; 2],
    last_fin: [u32; 2],
    last_rst: [u32; 2],
}

/// What one segment did to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before the segment.
    pub from: FlowState,
    /// State after it.
    pub to: FlowState,
    /// The three-way handshake completed with this segment.
    pub established: bool,
    /// SYN/FIN/RST combination Zeek records as `I` or `Q`.
    pub flag_combo: bool,
}

/// The handshake's moves of the flow state for a segment from `side` with
/// these SYN and ACK flags; true when the three-way handshake completes.
#[inline]
fn handshake(state: &mut FlowState, side: FlowSide, syn: bool, ack: bool) -> bool {
    match (*state, side) {
        (FlowState::SynSent, FlowSide::Responder) if syn && ack => {
            *state = FlowState::SynReceived;
        }
        (FlowState::SynReceived, FlowSide::Initiator) if ack && !syn => {
            *state = FlowState::Established;
            return true;
        }
        (FlowState::MidStream, FlowSide::Responder) => *state = FlowState::Established,
        _ => {}
    }
    false
}

/// True if `a` is at or after `b` in sequence space.
const fn seq_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}

impl TcpTrack {
    /// Applies one segment sent by `side` with `payload_len` bytes of payload.
    #[inline(always)]
    pub fn update(
        &mut self,
        state: &mut FlowState,
        history: &mut History,
        side: FlowSide,
        tcp: &TcpInfo,
        payload_len: u32,
    ) -> Transition {
        let from = *state;
        let control = TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0;
        if tcp.flags.0 & control != 0 || self.fin_seen != 0 || from.is_terminal() {
            return self.update_control(state, history, side, tcp, payload_len);
        }
        // The common segment: no SYN/FIN/RST, no FIN seen yet. It can add
        // `D` or `A`, mark its endpoint active and finish a handshake.
        let s = side.index();
        let ack = tcp.flags.contains(TcpFlags::ACK);
        if payload_len > 0 {
            history.record_once(s, HistoryLetter::Data);
        } else if ack {
            history.record_once(s, HistoryLetter::Ack);
        }
        if self.endpoint[s] == EndpointState::Inactive {
            self.endpoint[s] = EndpointState::Partial;
        }
        let established = handshake(state, side, false, ack);
        Transition {
            from,
            to: *state,
            established,
            flag_combo: false,
        }
    }

    /// [`TcpTrack::update`] for segments with SYN, FIN or RST, or after a FIN.
    fn update_control(
        &mut self,
        state: &mut FlowState,
        history: &mut History,
        side: FlowSide,
        tcp: &TcpInfo,
        payload_len: u32,
    ) -> Transition {
        let from = *state;
        let flag_combo = self.record_history(history, side, tcp, payload_len);
        self.update_endpoints(side, tcp.flags);
        let f = tcp.flags;
        let s = side.index();
        let mut established = false;
        if f.contains(TcpFlags::RST) {
            *state = FlowState::Reset;
        } else if !from.is_terminal() {
            let ack = f.contains(TcpFlags::ACK);
            established = handshake(state, side, f.contains(TcpFlags::SYN), ack);
            if f.contains(TcpFlags::FIN) {
                self.fin_seen |= 1 << s;
                self.fin_end[s] = tcp.seq.wrapping_add(payload_len).wrapping_add(1);
            }
            let peer = side.other().index();
            if ack && self.fin_seen & (1 << peer) != 0 && seq_ge(tcp.ack, self.fin_end[peer]) {
                self.fin_acked |= 1 << peer;
            }
            if self.fin_seen != 0 {
                *state = if self.fin_acked == 3 {
                    FlowState::Closed
                } else if self.fin_seen == 3 {
                    FlowState::Closing
                } else {
                    FlowState::FinWait
                };
            }
        }
        Transition {
            from,
            to: *state,
            established,
            flag_combo,
        }
    }

    /// Zeek's history rules for one segment; returns true for an `I`/`Q` combination.
    fn record_history(
        &mut self,
        history: &mut History,
        side: FlowSide,
        tcp: &TcpInfo,
        payload_len: u32,
    ) -> bool {
        let f = tcp.flags;
        let s = side.index();
        let (syn, fin, rst) = (
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::RST),
        );
        let bits = u8::from(syn) + u8::from(fin) + u8::from(rst);
        if bits > 1 {
            let letter = if fin && rst {
                HistoryLetter::FinRst
            } else {
                HistoryLetter::MultiFlag
            };
            history.record_once(s, letter);
            return true;
        }
        if syn {
            let letter = if f.contains(TcpFlags::ACK) {
                HistoryLetter::SynAck
            } else {
                HistoryLetter::Syn
            };
            Self::record_repeatable(history, s, letter, &mut self.last_syn[s], tcp.seq);
        } else if fin {
            let end = tcp.seq.wrapping_add(payload_len);
            Self::record_repeatable(history, s, HistoryLetter::Fin, &mut self.last_fin[s], end);
        } else if rst {
            Self::record_repeatable(
                history,
                s,
                HistoryLetter::Rst,
                &mut self.last_rst[s],
                tcp.seq,
            );
        } else if payload_len > 0 {
            history.record_once(s, HistoryLetter::Data);
        } else if f.contains(TcpFlags::ACK) {
            history.record_once(s, HistoryLetter::Ack);
        }
        false
    }

    /// First time: record; later: record again only for a new sequence number.
    fn record_repeatable(
        history: &mut History,
        side: usize,
        letter: HistoryLetter,
        last: &mut u32,
        seq: u32,
    ) {
        if !history.record_once(side, letter) && seq != *last {
            history.push(side, letter);
        }
        *last = seq;
    }

    /// Zeek's endpoint transitions, reduced to what `conn_state` reads.
    fn update_endpoints(&mut self, side: FlowSide, f: TcpFlags) {
        let s = side.index();
        let peer = side.other().index();
        if f.contains(TcpFlags::SYN) {
            match side {
                FlowSide::Initiator if !f.contains(TcpFlags::ACK) => {
                    self.endpoint[s] = EndpointState::SynSent;
                }
                FlowSide::Initiator => self.endpoint[s] = EndpointState::SynAckSent,
                FlowSide::Responder => {
                    if self.endpoint[peer] == EndpointState::SynSent {
                        self.endpoint[peer] = EndpointState::Established;
                    }
                    self.endpoint[s] = EndpointState::Established;
                }
            }
        }
        if f.contains(TcpFlags::RST) {
            self.endpoint[s] = EndpointState::Reset;
        } else if f.contains(TcpFlags::FIN) {
            self.endpoint[s] = EndpointState::Closed;
        } else if self.endpoint[s] == EndpointState::Inactive {
            self.endpoint[s] = EndpointState::Partial;
        }
    }

    /// Zeek's `conn_state` for a TCP flow; `payload` = payload bytes per side.
    pub fn conn_state(&self, payload: [u64; 2]) -> &'static str {
        use EndpointState as E;
        let [os, rs] = self.endpoint;
        if rs == E::Reset {
            if matches!(os, E::SynSent | E::SynAckSent) || (os == E::Reset && payload == [0, 0]) {
                "REJ"
            } else if os.inactive() {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == E::Reset {
            if rs.inactive() { "RSTOS0" } else { "RSTO" }
        } else if os == E::Closed && rs == E::Closed {
            "SF"
        } else if os == E::Closed {
            if rs.inactive() { "SH" } else { "S2" }
        } else if rs == E::Closed {
            if os.inactive() { "SHR" } else { "S3" }
        } else if os == E::SynSent && rs == E::Inactive {
            "S0"
        } else if os == E::Established && rs == E::Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: TcpFlags = TcpFlags::SYN;
    const A: TcpFlags = TcpFlags::ACK;
    const F: TcpFlags = TcpFlags::FIN;
    const R: TcpFlags = TcpFlags::RST;
    const P: TcpFlags = TcpFlags::PSH;

    struct Conn {
        t: TcpTrack,
        state: FlowState,
        h: History,
    }

    impl Conn {
        fn new(state: FlowState) -> Self {
            Self {
                t: TcpTrack::default(),
                state,
                h: History::default(),
            }
        }
        fn seg(
            &mut self,
            side: FlowSide,
            flags: TcpFlags,
            seq: u32,
            ack: u32,
            len: u32,
        ) -> Transition {
            let tcp = TcpInfo {
                flags,
                seq,
                ack,
                window: 1000,
            };
            self.t.update(&mut self.state, &mut self.h, side, &tcp, len)
        }
    }

    use FlowSide::{Initiator as O, Responder as R_};

    #[test]
    fn full_connection_is_sf_with_zeek_history() {
        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 100, 0, 0);
        assert_eq!(c.seg(R_, S | A, 500, 101, 0).to, FlowState::SynReceived);
        let t = c.seg(O, A, 101, 501, 0);
        assert!(t.established);
        assert_eq!(t.to, FlowState::Established);
        c.seg(O, A | P, 101, 501, 10);
        c.seg(R_, A, 501, 111, 0);
        c.seg(R_, A | P, 501, 111, 20);
        assert_eq!(c.seg(O, F | A, 111, 521, 0).to, FlowState::FinWait);
        assert_eq!(c.seg(R_, F | A, 521, 112, 0).to, FlowState::Closing);
        assert_eq!(c.seg(O, A, 112, 522, 0).to, FlowState::Closed);
        assert_eq!(c.h.as_str(), "ShADadFf");
        assert_eq!(c.t.conn_state([10, 20]), "SF");
    }

    #[test]
    fn retransmitted_syn_adds_nothing_new_syn_adds_s() {
        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 7, 0, 0);
        c.seg(O, S, 7, 0, 0);
        assert_eq!(c.h.as_str(), "S");
        c.seg(O, S, 9000, 0, 0);
        assert_eq!(c.h.as_str(), "SS");
        assert_eq!(c.t.conn_state([0, 0]), "S0");
    }

    #[test]
    fn rejected_and_reset_states() {
        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 1, 0, 0);
        assert_eq!(c.seg(R_, R | A, 0, 2, 0).to, FlowState::Reset);
        assert_eq!(c.h.as_str(), "Sr");
        assert_eq!(c.t.conn_state([0, 0]), "REJ");

        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 1, 0, 0);
        c.seg(O, R, 2, 0, 0);
        assert_eq!(c.t.conn_state([0, 0]), "RSTOS0");

        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 1, 0, 0);
        c.seg(R_, S | A, 1, 2, 0);
        c.seg(O, A, 2, 2, 0);
        c.seg(O, R | A, 2, 2, 0);
        assert_eq!(c.t.conn_state([0, 0]), "RSTO");
        assert_eq!(c.h.as_str(), "ShAR");
    }

    #[test]
    fn half_open_and_midstream() {
        // Zeek's SH: SYN, data and FIN from the originator only ("SADF").
        let mut c = Conn::new(FlowState::SynSent);
        c.seg(O, S, 1, 0, 0);
        c.seg(O, A, 2, 0, 0);
        c.seg(O, A | P, 2, 0, 5);
        c.seg(O, F | A, 7, 0, 0);
        assert_eq!(c.h.as_str(), "SADF");
        assert_eq!(c.t.conn_state([5, 0]), "SH");

        let mut c = Conn::new(FlowState::MidStream);
        c.seg(O, A | P, 1, 1, 5);
        assert_eq!(c.state, FlowState::MidStream);
        assert_eq!(c.seg(R_, A, 1, 6, 0).to, FlowState::Established);
        assert_eq!(c.t.conn_state([5, 0]), "OTH");
    }

    #[test]
    fn flag_combinations() {
        let mut c = Conn::new(FlowState::MidStream);
        assert!(c.seg(O, F | R, 1, 0, 0).flag_combo);
        assert!(c.seg(R_, S | F, 1, 0, 0).flag_combo);
        assert_eq!(c.h.as_str(), "Iq");
    }

    #[test]
    fn fin_ack_wraps_sequence_space() {
        let mut c = Conn::new(FlowState::Established);
        c.seg(O, F | A, u32::MAX, 5, 0);
        // FIN at u32::MAX is acknowledged by ack 0.
        c.seg(R_, F | A, 5, 0, 0);
        assert_eq!(c.seg(O, A, 0, 6, 0).to, FlowState::Closed);
    }
}
