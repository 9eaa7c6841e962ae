//! Record writers (EVE JSON lines).

mod eve;
mod eve_l7;
pub mod ipfix;
pub mod spec;
mod time;
pub mod zeek;

pub use eve::{EveEndpoints, EveWriter};
pub use time::write_rfc3339_micros;
