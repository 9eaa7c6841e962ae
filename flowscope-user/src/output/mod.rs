//! Record outputs: the [`Record`] type every record travels as, the writer
//! stage ([`Outputs`]) and the formats it writes (EVE JSON, Zeek conn.log and
//! ssh.log, IPFIX), with the `--output` specifications that name them.

mod community;
pub mod eve;
mod file;
pub mod ipfix;
mod outputs;
pub mod pcapng;
mod record;
pub mod spec;
pub mod zeek;
pub mod zeek_ssh;

pub use eve::{EveEncoder, write_rfc3339_micros};
pub use outputs::{DEFAULT_CLOSE_WAIT, FileOptions, OutputReport, Outputs, WriterStats};
pub use record::{FlowEnd, FlowHeader, Record};
pub use spec::{OutputSpec, SpecError, check_distinct};
