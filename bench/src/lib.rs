//! Traffic generation for flowscope tests and benchmarks.
//!
//! The `fsgen` binary sends an exact number of valid Ethernet frames of a
//! set of flows from an `AF_PACKET` socket; this library holds its parts so
//! they can be unit-tested: [`checksum`], [`frame`] (the frame builder),
//! [`flows`] (which flows exist and how many frames each gets),
//! [`packet_socket`] (the `sendmmsg` sender), [`cpu`] (CPU pinning that
//! selects the TX queue), [`generator`] (the per-queue send loop) and
//! [`flood`] (the SYN-flood mode). [`track`] and [`sessions`] hold the
//! workloads of the tracker and pipeline benchmarks.
#![deny(missing_docs)]

pub mod checksum;
pub mod cpu;
pub mod flood;
pub mod flows;
pub mod frame;
pub mod generator;
pub mod packet_socket;
pub mod sessions;
pub mod track;
