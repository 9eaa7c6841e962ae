//! [`PcapngWriter`]: frames into pcapng files in a directory, with
//! nanosecond timestamps, one interface block per link type (a live
//! capture has one: its interface), rotation by size and age, and a bound
//! on the directory's total that removes the oldest files (counted).
//!
//! Files are `flowscope-<unix seconds>-<n>.pcapng`, `n` counting from 1 in
//! each run, so names sort by age and never collide within a run.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::view::{LinkType, Timestamp};

/// Where and how frames are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapngConfig {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// Start a new file once the current one holds this many bytes.
    pub rotate_bytes: Option<u64>,
    /// Start a new file once the current one is this old.
    pub rotate_after: Option<Duration>,
    /// Keep the files this run wrote under this many bytes in total,
    /// removing the oldest.
    pub max_total_bytes: Option<u64>,
    /// The interface's name, for the interface blocks (live).
    pub iface: Option<String>,
}

/// What the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapngStats {
    /// Frames written.
    pub frames: u64,
    /// Their captured bytes.
    pub bytes: u64,
    /// Frames lost to a write error.
    pub failed: u64,
    /// Files started.
    pub files: u64,
    /// Files removed to keep the total bound.
    pub files_removed: u64,
}

/// An open file: its path, writer, size, start, and the interface number of
/// each link type it has a block for.
struct Current {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    opened: Instant,
    ifaces: Vec<LinkType>,
}

/// See the [module docs](self).
pub struct PcapngWriter {
    cfg: PcapngConfig,
    run: u64,
    current: Option<Current>,
    /// Files closed, oldest first, with their sizes.
    closed: Vec<(PathBuf, u64)>,
    stats: PcapngStats,
    error: Option<io::Error>,
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

/// The pcap link type number of `link`.
pub fn linktype(link: LinkType) -> u16 {
    match link {
        LinkType::Ethernet => 1,
        LinkType::RawIp => 101,
        LinkType::LinuxSll => 113,
        LinkType::LinuxSll2 => 276,
        LinkType::Loopback => 0,
    }
}

/// Bytes to pad `n` to a multiple of 4.
fn pad(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// One option: code, length, value, padding.
fn option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    b.resize(b.len() + pad(value.len()), 0);
}

/// A whole block: type, total length, `body`, total length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

impl PcapngWriter {
    /// A writer into `cfg.dir`, which is created if missing; the first file
    /// starts with the first frame.
    ///
    /// # Errors
    ///
    /// The directory cannot be created, or the path is not a directory.
    pub fn open(cfg: PcapngConfig) -> io::Result<Self> {
        fs::create_dir_all(&cfg.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pcap directory {}: {e}", cfg.dir.display()),
            )
        })?;
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Self {
            cfg,
            run,
            current: None,
            closed: Vec::new(),
            stats: PcapngStats::default(),
            error: None,
        })
    }

    /// Writes one frame: `bytes` as captured, `orig_len` on the wire.
    pub fn write(&mut self, link: LinkType, ts: Timestamp, orig_len: u32, bytes: &[u8]) {
        if let Err(e) = self.try_write(link, ts, orig_len, bytes) {
            self.stats.failed += 1;
            self.error.get_or_insert(e);
        }
    }

    fn try_write(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        orig_len: u32,
        bytes: &[u8],
    ) -> io::Result<()> {
        if self.rotation_due() {
            self.close()?;
        }
        if self.current.is_none() {
            self.start()?;
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let iface = match cur.ifaces.iter().position(|l| *l == link) {
            Some(i) => i,
            None => {
                let mut body = Vec::with_capacity(32);
                body.extend_from_slice(&linktype(link).to_le_bytes());
                body.extend_from_slice(&0u16.to_le_bytes());
                // Snap length 0: no limit.
                body.extend_from_slice(&0u32.to_le_bytes());
                if let Some(name) = &self.cfg.iface {
                    option(&mut body, IF_NAME, name.as_bytes());
                }
                option(&mut body, IF_TSRESOL, &[9]);
                option(&mut body, OPT_END, &[]);
                let b = block(IDB, &body);
                cur.out.write_all(&b)?;
                cur.size += b.len() as u64;
                cur.ifaces.push(link);
                cur.ifaces.len() - 1
            }
        };
        let total = 32 + bytes.len() + pad(bytes.len());
        let mut head = [0u8; 28];
        head[0..4].copy_from_slice(&EPB.to_le_bytes());
        head[4..8].copy_from_slice(&(total as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(iface as u32).to_le_bytes());
        head[12..16].copy_from_slice(&((ts.0 >> 32) as u32).to_le_bytes());
        head[16..20].copy_from_slice(&(ts.0 as u32).to_le_bytes());
        head[20..24].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        head[24..28].copy_from_slice(&orig_len.max(bytes.len() as u32).to_le_bytes());
        cur.out.write_all(&head)?;
        cur.out.write_all(bytes)?;
        cur.out.write_all(&[0u8; 3][..pad(bytes.len())])?;
        cur.out.write_all(&(total as u32).to_le_bytes())?;
        cur.size += total as u64;
        self.stats.frames += 1;
        self.stats.bytes += bytes.len() as u64;
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        self.current.as_ref().is_some_and(|c| {
            self.cfg.rotate_bytes.is_some_and(|b| c.size >= b)
                || self
                    .cfg
                    .rotate_after
                    .is_some_and(|d| c.opened.elapsed() >= d)
        })
    }

    /// Starts rotation-by-age files when due (the writer calls it when idle).
    pub fn rotate_due(&mut self) {
        if self.rotation_due()
            && let Err(e) = self.close()
        {
            self.error.get_or_insert(e);
        }
    }

    fn start(&mut self) -> io::Result<()> {
        self.stats.files += 1;
        let path = self.cfg.dir.join(format!(
            "flowscope-{}-{}.pcapng",
            self.run, self.stats.files
        ));
        let file = File::create_new(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length unknown.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        let b = block(SHB, &body);
        out.write_all(&b)?;
        self.current = Some(Current {
            path,
            out,
            size: b.len() as u64,
            opened: Instant::now(),
            ifaces: Vec::new(),
        });
        Ok(())
    }

    /// Closes the current file and removes the oldest ones past the bound.
    fn close(&mut self) -> io::Result<()> {
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        cur.out.flush()?;
        self.closed.push((cur.path, cur.size));
        if let Some(max) = self.cfg.max_total_bytes {
            let mut total: u64 = self.closed.iter().map(|(_, s)| s).sum();
            while total > max && self.closed.len() > 1 {
                let (path, size) = self.closed.remove(0);
                fs::remove_file(&path)?;
                total -= size;
                self.stats.files_removed += 1;
            }
        }
        Ok(())
    }

    /// Flushes the current file.
    pub fn flush(&mut self) {
        if let Some(c) = self.current.as_mut()
            && let Err(e) = c.out.flush()
        {
            self.error.get_or_insert(e);
        }
    }

    /// Closes the last file; what was written and the first error.
    pub fn finish(mut self) -> (PcapngStats, Option<io::Error>) {
        if let Err(e) = self.close() {
            self.error.get_or_insert(e);
        }
        (self.stats, self.error)
    }
}
