//! The [`SessionParser`](crate::session::SessionParser) glue shared by the
//! stream parsers (HTTP, TLS): bytes, gaps and ends go to the parser's own
//! `feed`/`gap`/`end`, records through [`Convert`](super::Convert), and the
//! status comes from the parser's `status()`.

/// Implements `SessionParser<R>` for `$parser`, which emits `$record` and
/// counts into `L7Counters::$counters`; with `reusable`, the parser's own
/// `reuse()` lets the driver take it for another flow.
macro_rules! impl_stream_session_parser {
    ($parser:ty, $record:ty, $counters:ident, reusable) => {
        impl_stream_session_parser!($parser, $record, $counters, {
            fn reset(&mut self) -> bool {
                self.reuse();
                true
            }
        });
    };
    ($parser:ty, $record:ty, $counters:ident) => {
        impl_stream_session_parser!($parser, $record, $counters, {});
    };
    ($parser:ty, $record:ty, $counters:ident, { $($extra:tt)* }) => {
        impl<R: From<$record>> $crate::session::SessionParser<R> for $parser {
            fn on_data(
                &mut self,
                side: $crate::session::Side,
                data: &[u8],
                _ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::session::RecordSink<R>,
            ) -> $crate::session::ParseStatus {
                self.feed(side, data, &mut $crate::l7::Convert(sink));
                self.status()
            }

            fn on_gap(
                &mut self,
                side: $crate::session::Side,
                len: u64,
                _ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::session::RecordSink<R>,
            ) -> $crate::session::ParseStatus {
                self.gap(side, len, &mut $crate::l7::Convert(sink));
                self.status()
            }

            fn on_end(
                &mut self,
                side: $crate::session::Side,
                _ts: $crate::view::Timestamp,
                sink: &mut dyn $crate::session::RecordSink<R>,
            ) {
                self.end(side, &mut $crate::l7::Convert(sink));
            }

            fn flush_counters(&mut self, into: &mut $crate::l7::L7Counters) {
                into.$counters.add(self.counters());
            }

            $($extra)*
        }
    };
}
