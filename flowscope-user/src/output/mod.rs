//! Record writers: EVE JSON lines, IPFIX, Zeek logs.

mod eve;
mod eve_l7;
pub mod ipfix;
pub mod spec;
mod time;
pub mod zeek;
pub mod zeek_ssh;

pub use eve::{EveEndpoints, EveWriter};
pub use time::write_rfc3339_micros;
