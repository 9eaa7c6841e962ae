//! HTTP/1.x message bodies: skipped, never copied, only their length counted.
//! Content-Length, chunked (with trailers) and close-delimited framing.

/// Where a body is in its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// This many body bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunk),
    /// The body runs until the sender closes the stream.
    UntilClose,
}

/// Position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data remain.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailer,
}

/// Outcome of one body step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyStep {
    /// `used` input bytes consumed, of which `data` were body data; `done`
    /// when the body ended.
    Took { used: usize, data: u64, done: bool },
    /// More bytes are needed to read a chunk line.
    NeedMore,
    /// Broken chunked framing.
    Invalid,
}

/// The stream lost sync: a gap went past what the framing can account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lost;

fn took(used: usize, data: u64, done: bool) -> BodyStep {
    BodyStep::Took { used, data, done }
}

impl Body {
    /// Consumes body bytes at the start of `buf`.
    pub(super) fn step(&mut self, buf: &[u8]) -> BodyStep {
        let avail = buf.len() as u64;
        match self {
            Self::Length(rest) => {
                let n = (*rest).min(avail);
                *rest -= n;
                took(n as usize, n, *rest == 0)
            }
            Self::UntilClose => took(buf.len(), avail, false),
            Self::Chunked(chunk) => step_chunk(chunk, buf),
        }
    }

    /// Accounts for `len` missing bytes; returns how many of them were body data
    /// and whether the body ended exactly there.
    pub(super) fn gap(&mut self, len: u64) -> Result<(u64, bool), Lost> {
        match self {
            Self::Length(rest) if len <= *rest => {
                *rest -= len;
                Ok((len, *rest == 0))
            }
            Self::UntilClose => Ok((len, false)),
            Self::Chunked(Chunk::Data(rest)) if len <= *rest => {
                *rest -= len;
                if *rest == 0 {
                    *self = Self::Chunked(Chunk::DataEnd);
                }
                Ok((len, false))
            }
            _ => Err(Lost),
        }
    }
}

fn step_chunk(chunk: &mut Chunk, buf: &[u8]) -> BodyStep {
    match *chunk {
        Chunk::Size => match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete((used, 0))) => {
                *chunk = Chunk::Trailer;
                took(used, 0, false)
            }
            Ok(httparse::Status::Complete((used, size))) => {
                *chunk = Chunk::Data(size);
                took(used, 0, false)
            }
            Ok(httparse::Status::Partial) => BodyStep::NeedMore,
            Err(_) => BodyStep::Invalid,
        },
        Chunk::Data(rest) => {
            let n = rest.min(buf.len() as u64);
            *chunk = if n == rest {
                Chunk::DataEnd
            } else {
                Chunk::Data(rest - n)
            };
            took(n as usize, n, false)
        }
        Chunk::DataEnd => match buf {
            [b'\r', b'\n', ..] => {
                *chunk = Chunk::Size;
                took(2, 0, false)
            }
            [b'\n', ..] => {
                *chunk = Chunk::Size;
                took(1, 0, false)
            }
            [] | [b'\r'] => BodyStep::NeedMore,
            _ => BodyStep::Invalid,
        },
        Chunk::Trailer => match buf.iter().position(|&b| b == b'\n') {
            Some(nl) => took(
                nl + 1,
                0,
                nl == 0 || (nl == 1 && buf.first() == Some(&b'\r')),
            ),
            None => BodyStep::NeedMore,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a body over `parts`, carrying unconsumed bytes like the parser does.
    fn run(mut body: Body, parts: &[&[u8]]) -> (u64, bool, usize) {
        let mut pending = Vec::new();
        let (mut data, mut done, mut leftover) = (0, false, 0);
        for part in parts {
            pending.extend_from_slice(part);
            let mut at = 0;
            while at < pending.len() && !done {
                match body.step(&pending[at..]) {
                    BodyStep::Took {
                        used,
                        data: d,
                        done: end,
                    } => {
                        at += used;
                        data += d;
                        done = end;
                    }
                    BodyStep::NeedMore => break,
                    BodyStep::Invalid => panic!("invalid at {at}"),
                }
            }
            pending.drain(..at);
            leftover = pending.len();
        }
        (data, done, leftover)
    }

    #[test]
    fn chunked_body_at_every_split() {
        let raw: &[u8] =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let body = Body::Chunked(Chunk::Size);
        assert_eq!(run(body, &[raw]), (31, true, 4));
        for cut in 0..=raw.len() {
            assert_eq!(
                run(body, &[&raw[..cut], &raw[cut..]]),
                (31, true, 4),
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(run(body, &bytes), (31, true, 4));
    }

    #[test]
    fn length_and_close_delimited() {
        assert_eq!(run(Body::Length(3), &[b"ab", b"cdef"]), (3, true, 3));
        assert_eq!(run(Body::UntilClose, &[b"ab", b"cdef"]), (6, false, 0));
    }

    #[test]
    fn gaps_inside_and_beyond_a_body() {
        let mut b = Body::Length(10);
        assert_eq!(b.gap(4), Ok((4, false)));
        assert_eq!(b.gap(6), Ok((6, true)));
        assert_eq!(Body::Length(3).gap(4), Err(Lost));
        let mut c = Body::Chunked(Chunk::Data(5));
        assert_eq!(c.gap(5), Ok((5, false)));
        assert_eq!(c, Body::Chunked(Chunk::DataEnd));
        assert_eq!(Body::Chunked(Chunk::Size).gap(1), Err(Lost));
        assert_eq!(Body::UntilClose.gap(100), Ok((100, false)));
        assert_eq!(
            Body::Chunked(Chunk::Size).step(b"zz\r\n"),
            BodyStep::Invalid
        );
    }
}
