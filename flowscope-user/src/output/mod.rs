//! Record writers (EVE JSON lines).

mod eve;
mod time;

pub use eve::{EveEndpoints, EveWriter};
pub use time::write_rfc3339_micros;
