//! Record outputs: the [`Record`] type every record travels as, the writer
//! stage ([`Outputs`]) and the formats it writes (EVE JSON, Zeek logs:
//! conn, http, dns, ssl, ssh, quic; IPFIX), with the `--output`
//! specifications that name them.

mod community;
pub mod eve;
mod file;
pub mod ipfix;
pub mod local_nets;
mod outputs;
pub mod pcapng;
mod record;
pub mod spec;
pub mod zeek;
pub mod zeek_dns;
pub mod zeek_http;
mod zeek_logs;
pub mod zeek_quic;
pub mod zeek_ssh;
pub mod zeek_ssl;
pub mod zeek_tunnel;

pub use community::FlowIds;
pub use eve::{EveEncoder, EveOptions, write_rfc3339_micros};
pub use local_nets::LocalNets;
pub use outputs::{DEFAULT_CLOSE_WAIT, FileOptions, OutputReport, Outputs, WriterStats};
pub use record::{FlowEnd, FlowHeader, Record};
pub use spec::{OutputSpec, SpecError, check_distinct};
