//! tcpdump/pcap-filter expressions (`--filter EXPR`).
//!
//! An expression is compiled once by libpcap ([`compile`]) into classic
//! BPF, validated ([`classic::Program::validate`]) and then either run per
//! frame in userspace by the interpreter here ([`Filter::matches`], for
//! `read`), or translated into eBPF and run in the XDP program
//! (`capture::xdp_filter`, for live capture). Both decide exactly as
//! libpcap's own `pcap_offline_filter` (tested on every frame of the shared
//! captures).
//!
//! ```
//! use flowscope::{filter::Filter, LinkType};
//! let f = Filter::compile("tcp port 80", LinkType::Ethernet).unwrap();
//! assert!(!f.matches(&[0u8; 60], 60));
//! let e = Filter::compile("tcp port", LinkType::Ethernet).unwrap_err();
//! assert_eq!(
//!     e.to_string(),
//!     "filter \"tcp port\": can't parse filter expression: syntax error"
//! );
//! ```

pub mod classic;
mod compile;
mod interp;

use crate::view::LinkType;
pub use classic::{Insn, Invalid, Program};
pub use compile::{compile, dlt};

/// A compiled and validated filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: String,
    program: Program,
}

/// Why an expression cannot be used: one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// libpcap refused it; its message.
    #[error("filter {expr:?}: {message}")]
    Compile {
        /// The expression.
        expr: String,
        /// libpcap's message.
        message: String,
    },
    /// libpcap compiled it into a program we do not run.
    #[error("filter {expr:?}: the compiled program is refused: {why}")]
    Invalid {
        /// The expression.
        expr: String,
        /// What was refused.
        why: Invalid,
    },
}

impl Filter {
    /// Compiles `expr` for frames of `link` and validates the program.
    ///
    /// # Errors
    ///
    /// [`FilterError`]: libpcap's message, or why its program is refused.
    pub fn compile(expr: &str, link: LinkType) -> Result<Self, FilterError> {
        let insns = compile::compile(expr, link).map_err(|message| FilterError::Compile {
            expr: expr.to_owned(),
            message,
        })?;
        let program = Program::validate(&insns).map_err(|why| FilterError::Invalid {
            expr: expr.to_owned(),
            why,
        })?;
        Ok(Self {
            expr: expr.to_owned(),
            program,
        })
    }

    /// Whether the frame passes: `frame` as captured, `wire_len` its length
    /// on the wire (what `len`, `less` and `greater` test).
    #[inline]
    pub fn matches(&self, frame: &[u8], wire_len: u32) -> bool {
        self.program.run(frame, wire_len) != 0
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The validated classic program.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

/// One expression for a capture file's frames, compiled for each link type
/// the file uses (as tcpdump compiles it for the file's link type), with
/// what it rejected.
#[derive(Debug, Clone)]
pub struct LinkFilters {
    expr: String,
    compiled: Vec<(LinkType, Filter)>,
    rejected: FilterCount,
}

/// Frames a filter rejected and their length on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterCount {
    /// Frames.
    pub frames: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
}

impl LinkFilters {
    /// `expr`, compiled now for `link` when the file says which it is, so
    /// that a bad expression fails before anything is read.
    ///
    /// # Errors
    ///
    /// [`FilterError`] for `link`.
    pub fn new(expr: &str, link: Option<LinkType>) -> Result<Self, FilterError> {
        let compiled = match link {
            Some(l) => vec![(l, Filter::compile(expr, l)?)],
            None => Vec::new(),
        };
        Ok(Self {
            expr: expr.to_owned(),
            compiled,
            rejected: FilterCount::default(),
        })
    }

    /// Whether a frame of `link` passes, counting it when it does not; the
    /// first frame of a link type compiles the expression for it.
    ///
    /// # Errors
    ///
    /// [`FilterError`]: the expression cannot be compiled for `link`.
    #[inline]
    pub fn pass(
        &mut self,
        frame: &[u8],
        wire_len: u32,
        link: LinkType,
    ) -> Result<bool, FilterError> {
        let f = match self.compiled.iter().position(|(l, _)| *l == link) {
            Some(i) => &self.compiled[i].1,
            None => {
                let f = Filter::compile(&self.expr, link)?;
                &self.compiled.push_mut((link, f)).1
            }
        };
        let pass = f.matches(frame, wire_len);
        if !pass {
            self.rejected.frames += 1;
            self.rejected.bytes += u64::from(wire_len);
        }
        Ok(pass)
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// What was rejected so far.
    pub fn rejected(&self) -> FilterCount {
        self.rejected
    }
}
