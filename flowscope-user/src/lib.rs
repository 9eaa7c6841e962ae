//! flowscope: passive flow and session tracking.
//!
//! The capture-independent core (frame parsing, extractors, the flow tracker,
//! reassembly, session parsers, output formats) builds and tests anywhere,
//! without root, a NIC or the eBPF object. [`runtime`] runs it on every
//! core, with one of two frame sources: capture files (anywhere), or the
//! Linux XDP/AF_XDP datapath in `capture` (socket and map access; the live
//! half of the runtime, with its `/metrics` endpoint, is Linux only, and
//! built with the default feature `live`).
//! `unsafe` is confined to `capture`, the capture-file mapping of [`pcap`],
//! two one-function hints in the tracker (`tracker::prefetch`,
//! `tracker::hugepage`), one ASCII conversion in `l7::session::texts` and
//! the signal handlers of [`cli`], each with a SAFETY note.
//!
//! Pipeline: [`PacketView`] → [`FlowExtractor`] → `FlowTracker` → reassembly
//! → session parsers → [`output::Record`] → writer stage.
#![deny(missing_docs)]

pub mod anomaly;
pub mod cli;
pub mod community_id;
pub mod extract;
pub mod extractor;
pub mod filter;
pub mod histogram;
pub mod l7;
pub mod obs;
pub mod output;
pub mod pcap;
pub mod pipeline;
pub mod reassembly;
pub mod tracker;
pub mod view;
pub mod wire;

#[cfg(live)]
pub mod capture;
pub mod runtime;

pub use extractor::{Extracted, FlowExtractor, L4Proto, Orientation, TcpFlags, TcpInfo, Unmatched};
pub use l7::session;
pub use view::{LinkType, PacketView, Timestamp};
