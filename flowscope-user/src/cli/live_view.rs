//! The live view: figures of one interval, as one plain line or as a
//! full-screen terminal view (ratatui).

use std::io::{self, Stdout};

use flowscope_common::Counter;
use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        event::{self, Event, KeyCode, KeyModifiers},
        execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    widgets::{Block, Borders, Paragraph, Row, Table},
};

use crate::capture::RingLevel;
use crate::output::OutputReport;
use crate::runtime::{LiveSnapshot, TopFlow};

/// One worker's rates over an interval.
#[derive(Debug, Clone)]
pub struct WorkerRates {
    /// Worker number.
    pub index: usize,
    /// Its RX queue.
    pub queue: u32,
    /// Frames per second.
    pub pps: f64,
    /// Megabits per second.
    pub mbps: f64,
    /// Socket drops in the interval: rx_dropped, rx_ring_full,
    /// fill_ring_empty, invalid descriptors.
    pub drops: [u64; 4],
    /// RX ring at the last batch read, percent full (near 100: falling
    /// behind).
    pub rx_ring_pct: f64,
    /// Fill ring before the last refill, percent full (near 0: the kernel
    /// is about to run out of frames).
    pub fill_ring_pct: f64,
}

/// Everything the live view shows for one interval.
#[derive(Debug, Clone)]
pub struct LiveRates {
    /// Frames per second seen by XDP.
    pub pps: f64,
    /// Megabits per second seen by XDP.
    pub mbps: f64,
    /// Frames passed to the stack for want of a socket, in the interval.
    pub pass_fallback: u64,
    /// Frames the filter expression rejected in the interval (`None`: no
    /// filter).
    pub filtered_out: Option<u64>,
    /// Socket drops summed over workers (see [`WorkerRates::drops`]).
    pub drops: [u64; 4],
    /// Records dropped on the way to the writer, in the interval.
    pub records_dropped: u64,
    /// Flows in the tables now.
    pub flows: u64,
    /// New flows per second.
    pub new_flows: f64,
    /// Per worker.
    pub workers: Vec<WorkerRates>,
    /// Heaviest flows.
    pub top: Vec<TopFlow>,
    /// Every output's counts since the start.
    pub outputs: Vec<OutputReport>,
}

impl LiveRates {
    /// The rates between two snapshots; `filtering`: whether a filter
    /// expression runs (its rejected frames are shown).
    pub fn between(now: &LiveSnapshot, prev: &LiveSnapshot, filtering: bool) -> Self {
        let secs = now.at.duration_since(prev.at).as_secs_f64().max(1e-6);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let (all, all0) = (now.xdp.get(Counter::All), prev.xdp.get(Counter::All));
        let workers: Vec<WorkerRates> = now
            .sockets
            .iter()
            .zip(prev.sockets.iter())
            .map(|(w, p)| {
                let (s, s0) = (&w.socket, &p.socket);
                WorkerRates {
                    index: w.id.index,
                    queue: w.id.queue,
                    pps: rate(s.rx_packets, s0.rx_packets),
                    mbps: rate(s.rx_bytes, s0.rx_bytes) * 8.0 / 1e6,
                    drops: [
                        s.rx_dropped.saturating_sub(s0.rx_dropped),
                        s.rx_ring_full.saturating_sub(s0.rx_ring_full),
                        s.fill_ring_empty.saturating_sub(s0.fill_ring_empty),
                        s.invalid_descs.saturating_sub(s0.invalid_descs),
                    ],
                    rx_ring_pct: percent(&s.rings.rx),
                    fill_ring_pct: percent(&s.rings.fill),
                }
            })
            .collect();
        let mut drops = [0u64; 4];
        for w in &workers {
            for (d, v) in drops.iter_mut().zip(w.drops) {
                *d += v;
            }
        }
        let moved = |c: Counter| {
            now.xdp
                .get(c)
                .packets
                .saturating_sub(prev.xdp.get(c).packets)
        };
        Self {
            pps: rate(all.packets, all0.packets),
            mbps: rate(all.bytes, all0.bytes) * 8.0 / 1e6,
            pass_fallback: moved(Counter::PassFallback),
            filtered_out: filtering.then(|| moved(Counter::FilterRejected)),
            drops,
            records_dropped: now
                .total
                .records_dropped
                .saturating_sub(prev.total.records_dropped),
            flows: now.total.flows_active,
            new_flows: rate(
                now.total.tracker.created_total(),
                prev.total.tracker.created_total(),
            ),
            workers,
            top: now.total.top.clone(),
            outputs: now.outputs.clone(),
        }
    }

    /// One plain line (for logs and pipes).
    pub fn line(&self) -> String {
        let [rxd, full, empty, inval] = self.drops;
        let mut line = format!(
            "{:>10.0} pps {:>9.1} Mbit/s{} | drops: pass_fallback {} rx_dropped {rxd} ring_full {full} fill_empty {empty} invalid {inval} records {} | flows {} new/s {:.0}",
            self.pps,
            self.mbps,
            self.filtered(),
            self.pass_fallback,
            self.records_dropped,
            self.flows,
            self.new_flows
        );
        for w in &self.workers {
            line.push_str(&format!(
                " | w{} q{} {:.0} pps {:.1} Mbit/s rx ring {:.0}% fill {:.0}%",
                w.index, w.queue, w.pps, w.mbps, w.rx_ring_pct, w.fill_ring_pct
            ));
        }
        for o in &self.outputs {
            line.push_str(&format!(" | {}", output_counts(o)));
        }
        if let Some(t) = self.top.first() {
            line.push_str(&format!(" | top {}", flow_label(t)));
        }
        line
    }

    /// ` | filtered out N` with a filter, else nothing.
    fn filtered(&self) -> String {
        self.filtered_out
            .map(|n| format!(" | filtered out {n}"))
            .unwrap_or_default()
    }
}

/// An output's counts: `eve0 written 12 dropped 0 failed 0`, and
/// `FAILED` once it has failed.
pub fn output_counts(o: &OutputReport) -> String {
    format!(
        "{} written {} dropped {} failed {}{}",
        o.name,
        o.written,
        o.dropped,
        o.failed,
        if o.error.is_some() { " FAILED" } else { "" }
    )
}

/// A ring's last sample as a share of its size.
fn percent(level: &RingLevel) -> f64 {
    f64::from(level.last) * 100.0 / f64::from(level.size.max(1))
}

fn flow_label(t: &TopFlow) -> String {
    let k = t.key;
    format!(
        "{}:{} <-> {}:{} {} B",
        k.src_ip(),
        k.src_port(),
        k.dst_ip(),
        k.dst_port(),
        t.bytes
    )
}

/// The full-screen view; restores the terminal when dropped.
pub struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Tui {
    /// Switches the terminal to the alternate screen, raw mode.
    ///
    /// # Errors
    ///
    /// The terminal refused.
    pub fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen) {
            let _ = disable_raw_mode();
            return Err(e);
        }
        Ok(Self {
            terminal: Terminal::new(CrosstermBackend::new(out))?,
        })
    }

    /// True if the user pressed `q`, Esc or Ctrl-C (raw mode swallows the
    /// signal), checked without blocking.
    pub fn quit_requested(&self) -> bool {
        while event::poll(std::time::Duration::ZERO).unwrap_or(false) {
            if let Ok(Event::Key(k)) = event::read()
                && (matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (k.code == KeyCode::Char('c')
                        && k.modifiers.contains(KeyModifiers::CONTROL)))
            {
                return true;
            }
        }
        false
    }

    /// Draws one interval.
    ///
    /// # Errors
    ///
    /// Writing to the terminal failed.
    pub fn draw(&mut self, header: &str, r: &LiveRates, extra: &[String]) -> io::Result<()> {
        self.terminal.draw(|f| {
            let [top, table, flows, more] = Layout::vertical([
                Constraint::Length(4),
                Constraint::Length(r.workers.len() as u16 + 3),
                Constraint::Length(7),
                Constraint::Min(0),
            ])
            .areas(f.area());
            let [rxd, full, empty, inval] = r.drops;
            let totals = format!(
                "{:.0} pps  {:.1} Mbit/s   flows {}  new/s {:.0}{}\ndrops: pass_fallback {}  rx_dropped {rxd}  ring_full {full}  fill_empty {empty}  invalid {inval}  records {}",
                r.pps, r.mbps, r.flows, r.new_flows, r.filtered(), r.pass_fallback, r.records_dropped
            );
            f.render_widget(Paragraph::new(totals).block(Block::default().borders(Borders::ALL).title(header.to_owned())), top);
            let rows = r.workers.iter().map(|w| {
                Row::new([
                    w.index.to_string(),
                    w.queue.to_string(),
                    format!("{:.0}", w.pps),
                    format!("{:.1}", w.mbps),
                    w.drops[0].to_string(),
                    w.drops[1].to_string(),
                    w.drops[2].to_string(),
                    w.drops[3].to_string(),
                    format!("{:.0}%", w.rx_ring_pct),
                    format!("{:.0}%", w.fill_ring_pct),
                ])
            });
            let widths = [Constraint::Length(10); 10];
            let head = Row::new(["worker", "queue", "pps", "Mbit/s", "dropped", "ringfull", "fillempty", "invalid", "rx ring", "fill ring"])
                .style(Style::default().add_modifier(Modifier::BOLD));
            f.render_widget(Table::new(rows, widths).header(head).block(Block::default().borders(Borders::ALL).title("workers")), table);
            let tops: Vec<String> = r.top.iter().map(flow_label).collect();
            f.render_widget(Paragraph::new(tops.join("\n")).block(Block::default().borders(Borders::ALL).title("top flows by bytes")), flows);
            f.render_widget(Paragraph::new(extra.join("\n")).block(Block::default().borders(Borders::ALL).title("q: quit")), more);
        })?;
        Ok(())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(self.terminal.backend_mut(), LeaveAlternateScreen);
        let _ = self.terminal.show_cursor();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::capture::{RingLevels, SocketStats, WorkerId, WorkerStats};
    use crate::runtime::Shard;

    fn snapshot(at: Instant, rx_last: u32, fill_last: u32) -> LiveSnapshot {
        let level = |size, last| RingLevel {
            size,
            last,
            ..RingLevel::default()
        };
        let socket = SocketStats {
            rings: RingLevels {
                rx: level(2048, rx_last),
                fill: level(8192, fill_last),
            },
            ..SocketStats::default()
        };
        LiveSnapshot {
            at,
            xdp: Default::default(),
            anomalies: Default::default(),
            sockets: vec![WorkerStats {
                id: WorkerId {
                    index: 0,
                    queue: 0,
                    slot: 0,
                    core: None,
                },
                socket,
            }],
            shards: vec![Shard::default()],
            total: Shard::default(),
            outputs: Vec::new(),
        }
    }

    #[test]
    fn each_worker_shows_its_rings_last_levels_as_shares_of_their_size() {
        let t = Instant::now();
        let prev = snapshot(t, 0, 8192);
        let now = snapshot(t + Duration::from_secs(1), 1536, 2048);
        let r = LiveRates::between(&now, &prev, false);
        assert_eq!(
            (r.workers[0].rx_ring_pct, r.workers[0].fill_ring_pct),
            (75.0, 25.0)
        );
        assert!(
            r.line()
                .contains(" | w0 q0 0 pps 0.0 Mbit/s rx ring 75% fill 25%")
        );
    }

    #[test]
    fn the_interval_shows_the_frames_the_filter_rejected_in_it() {
        let t = Instant::now();
        let (mut prev, mut now) = (
            snapshot(t, 0, 0),
            snapshot(t + Duration::from_secs(1), 0, 0),
        );
        let rejected = |packets| flowscope_common::ClassCounter {
            packets,
            bytes: 60 * packets,
        };
        prev.xdp.slots[Counter::FilterRejected as usize] = rejected(40);
        now.xdp.slots[Counter::FilterRejected as usize] = rejected(47);
        let r = LiveRates::between(&now, &prev, true);
        assert_eq!(r.filtered_out, Some(7));
        assert!(
            r.line().contains(" Mbit/s | filtered out 7 | drops:"),
            "{}",
            r.line()
        );
        let r = LiveRates::between(&now, &prev, false);
        assert_eq!(r.filtered_out, None);
        assert!(!r.line().contains("filtered"), "{}", r.line());
    }
}
