//! [`RunConfig`]: what a run does with the frames, the same for live
//! capture and for capture files.

use crate::extract::{AutoDetectEncap, FiveTuple};
use crate::output::{EveOptions, FileOptions, OutputSpec};
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
    /// What EVE outputs write besides Suricata's fields (live, the
    /// capture fills in `in_iface`).
    pub eve: EveOptions,
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
            eve: EveOptions::default(),
            pcap: None,
        }
    }
}

/// Most workers an offline run (`read`) may have. A flow ID keeps its
/// worker's index in its top 16 bits, and each worker preallocates its
/// whole flow table before the first packet, so workers far past the
/// cores only cost memory: 1 024 is more than the cores of the largest
/// hosts. (Live workers are one per socket: queues × at most 64.)
pub const MAX_WORKERS: usize = 1024;

impl RunConfig {
    /// Worker `index`'s pipeline: flow IDs from the worker's own range
    /// (its index in the top 16 bits), and the TLS chain's fingerprints
    /// hashed when a Zeek log, the only record that has them, is written.
    pub(super) fn worker_pipeline(&self, index: usize) -> Option<PipelineConfig> {
        let mut p = self.pipeline.clone()?;
        p.tracker.flow_id_base = (index as u64) << 48;
        if let Some(l7) = p.l7.as_mut() {
            let zeek = self
                .outputs
                .iter()
                .any(|o| matches!(o, OutputSpec::Zeek { .. }));
            l7.tls.chain_fingerprints |= zeek;
        }
        Some(p)
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
