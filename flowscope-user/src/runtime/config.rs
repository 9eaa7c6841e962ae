//! [`RunConfig`]: what a run does with the frames, the same for live
//! capture and for capture files.

use crate::extract::{AutoDetectEncap, FiveTuple};
use crate::output::{FileOptions, OutputSpec};
use crate::pipeline::PipelineConfig;

use super::frames::PcapConfig;

/// Settings shared by live capture and capture files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Each worker's pipeline (tracker, fragments, reassembly, parsers);
    /// `None` makes bare receivers that only count frames (live
    /// benchmark only).
    pub pipeline: Option<PipelineConfig>,
    /// Key flows on the innermost packet of tunnels (VXLAN, Geneve, GRE,
    /// IP-in-IP, GTP-U, Teredo) instead of the outer one.
    pub decap: bool,
    /// Records buffered per worker on the way to the writer.
    pub record_ring: usize,
    /// Where records go.
    pub outputs: Vec<OutputSpec>,
    /// How output files are opened and rotated.
    pub files: FileOptions,
    /// Frames of chosen flows to pcapng files (`--write-pcap`).
    pub pcap: Option<PcapConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            pipeline: Some(PipelineConfig::default()),
            decap: false,
            record_ring: 1 << 16,
            outputs: Vec::new(),
            files: FileOptions::default(),
            pcap: None,
        }
    }
}

/// The extractor of outer packets.
pub(super) fn plain() -> FiveTuple {
    FiveTuple::bidirectional()
}

/// The extractor that looks through tunnels.
pub(super) fn decap() -> AutoDetectEncap<FiveTuple> {
    AutoDetectEncap::new(FiveTuple::bidirectional())
}
