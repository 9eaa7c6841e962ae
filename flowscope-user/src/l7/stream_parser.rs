//! The [`SessionParser`](crate::l7::session::SessionParser) glue shared by the
//! stream parsers (HTTP, TLS): bytes, gaps and ends go to the parser's own
//! `feed`/`gap`/`end`, records through [`Convert`](super::Convert), and the
//! status comes from the parser's `status()`.

/// Implements `SessionParser<R>` for `$parser`, which emits `$record` and
/// counts into `L7Counters::$counters`. Optional methods after that: with
/// `reusable`, the parser's own `reuse()` lets the driver take it for
/// another flow; with `prefetch`, its own `prefetch()` is the trait's;
/// with `clocked`, its own `set_time()` learns each data's time.
macro_rules! impl_stream_session_parser {
    ($parser:ty, $record:ty, $counters:ident $(, $optional:ident)*) => {
        impl<R: From<$record>> $crate::l7::session::SessionParser<R> for $parser {
            fn on_data(
                &mut self,
                side: $crate::l7::session::Side,
                data: &[u8],
                ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::l7::session::RecordSink<R>,
            ) -> $crate::l7::session::ParseStatus {
                $(stream_parser_clock!(self, ts, $optional);)*
                let _ = ts;
                self.feed(side, data, &mut $crate::l7::Convert(sink));
                self.status()
            }

            fn on_gap(
                &mut self,
                side: $crate::l7::session::Side,
                len: u64,
                _ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::l7::session::RecordSink<R>,
            ) -> $crate::l7::session::ParseStatus {
                self.gap(side, len, &mut $crate::l7::Convert(sink));
                self.status()
            }

            fn on_end(
                &mut self,
                side: $crate::l7::session::Side,
                _ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::l7::session::RecordSink<R>,
            ) {
                self.end(side, &mut $crate::l7::Convert(sink));
            }

            fn flush_counters(&mut self, into: &mut $crate::l7::L7Counters) {
                into.$counters.add(self.counters());
            }

            $(stream_parser_method!($parser, $optional);)*
        }
    };
}

/// With `clocked`, the parser's own `set_time()` takes the time of the
/// bytes it is fed next (for its records' own times).
macro_rules! stream_parser_clock {
    ($parser:expr, $ts:expr, clocked) => {
        $parser.set_time($ts)
    };
    ($parser:expr, $ts:expr, $other:ident) => {};
}

/// One optional method of [`impl_stream_session_parser`].
macro_rules! stream_parser_method {
    ($parser:ty, reusable) => {
        fn reset(&mut self) -> bool {
            self.reuse();
            true
        }
    };
    ($parser:ty, clocked) => {};
    ($parser:ty, prefetch) => {
        #[inline(always)]
        fn prefetch(&self) {
            <$parser>::prefetch(self);
        }
    };
}
