//! IPFIX export (RFC 7011, biflows per RFC 5103) over UDP or TCP.
//!
//! [`IpfixExporter`] takes ended flow records and sends them to one
//! collector from its own thread; [`MessageEncoder`] builds the messages.

mod encode;
mod transport;

pub use encode::{
    IpfixDirection, IpfixFlow, IpfixMode, MessageEncoder, REVERSE_PEN, flow_end_reason,
};
pub use transport::{IpfixConfig, IpfixExporter, IpfixStats, IpfixTransport};
