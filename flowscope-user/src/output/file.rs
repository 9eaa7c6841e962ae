//! [`RecordFile`]: a file output's buffer, which counts a record written
//! only once the kernel accepted its bytes.
//!
//! Formatters write whole lines into the buffer (it implements [`Write`]
//! and never fails) and mark where each record ends; the buffer goes to the
//! file in one `write` when it is large, on flush and before a reopen. A
//! successful write moves its records from pending to written; a failed
//! one counts them failed, cuts the file back to its last whole line (so a
//! full disk leaves no half line) and keeps the error.
//!
//! A file opened with [`RecordFile::open_lines`] (a Zeek log) counts every
//! write that does not start with `#` as one record: a Zeek log writes
//! each record line, and each block of `#` header lines, in one call.
//!
//! Opening in append mode trims a partial last line an earlier, killed run
//! left (its bytes are reported), so the file holds only whole lines.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes buffered before they go to the file.
const BUFFER: usize = 1 << 16;

/// Where the bytes go.
#[derive(Debug)]
enum Dest {
    Stdout(io::Stdout),
    File(File),
}

/// A buffered record file (or standard output). See the [module docs](self).
#[derive(Debug)]
pub(super) struct RecordFile {
    path: Option<PathBuf>,
    dest: Dest,
    buf: Vec<u8>,
    /// Records in `buf`.
    pending: u64,
    /// Records whose bytes the kernel accepted.
    pub(super) written: u64,
    /// Records whose write failed.
    pub(super) failed: u64,
    /// The file's length: where the next write lands.
    len: u64,
    opened: Instant,
    /// Bytes of a partial last line trimmed when opening.
    pub(super) trimmed: u64,
    /// Every write not starting with `#` is one record.
    lines: bool,
}

impl Write for RecordFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.lines && data.first().is_some_and(|&b| b != b'#') {
            self.pending += 1;
        }
        self.buf.extend_from_slice(data);
        if self.lines {
            // Its records failed if this fails (counted in `push_out`).
            self.maybe_push()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_out()
    }
}

/// Opens `path` for records: appended to (a partial last line trimmed) or
/// truncated. Returns the file, its length and the bytes trimmed.
fn open_file(path: &Path, append: bool) -> io::Result<(File, u64, u64)> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory; this output writes a file",
        ));
    }
    let mut file = File::options()
        .create(true)
        .read(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    let meta = file.metadata()?;
    if !append || !meta.is_file() {
        return Ok((file, 0, 0));
    }
    let len = meta.len();
    let whole = whole_lines_len(&mut file, len)?;
    if whole < len {
        file.set_len(whole)?;
    }
    Ok((file, whole, len - whole))
}

/// The length of `file`'s whole lines: up to and including its last `\n`.
fn whole_lines_len(file: &mut File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0u8; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

impl RecordFile {
    /// Opens `path` (standard output when `None`).
    ///
    /// # Errors
    ///
    /// Opening, reading or trimming the file.
    pub(super) fn open(path: Option<&Path>, append: bool) -> io::Result<Self> {
        let (dest, len, trimmed) = match path {
            None => (Dest::Stdout(io::stdout()), 0, 0),
            Some(p) => {
                let (f, len, trimmed) = open_file(p, append)?;
                (Dest::File(f), len, trimmed)
            }
        };
        Ok(Self {
            path: path.map(Path::to_owned),
            dest,
            // Room for the line that crosses `BUFFER`: the buffer never
            // grows once lines are shorter than that.
            buf: Vec::with_capacity(2 * BUFFER),
            pending: 0,
            written: 0,
            failed: 0,
            len,
            opened: Instant::now(),
            trimmed,
            lines: false,
        })
    }

    /// Opens `path` for a log whose every write is one record line, or a
    /// block of `#` lines (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub(super) fn open_lines(path: &Path, append: bool) -> io::Result<Self> {
        let mut f = Self::open(Some(path), append)?;
        f.lines = true;
        Ok(f)
    }

    /// Records buffered, not yet written.
    pub(super) fn pending(&self) -> u64 {
        self.pending
    }

    /// Writes the buffer out when it is large.
    fn maybe_push(&mut self) -> io::Result<()> {
        if self.buf.len() >= BUFFER {
            self.push_out()
        } else {
            Ok(())
        }
    }

    /// The file's path (none: standard output).
    pub(super) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Marks the end of one record in the buffer, writing the buffer out
    /// when it is large.
    ///
    /// # Errors
    ///
    /// Writing the buffer out failed (its records are counted failed).
    pub(super) fn end_record(&mut self) -> io::Result<()> {
        self.pending += 1;
        self.maybe_push()
    }

    /// Writes the buffer to the file.
    fn push_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = match &mut self.dest {
            Dest::Stdout(s) => s.write_all(&self.buf).and_then(|()| s.flush()),
            Dest::File(f) => f.write_all(&self.buf),
        };
        match result {
            Ok(()) => {
                self.written += self.pending;
                self.len += self.buf.len() as u64;
            }
            Err(_) => {
                self.failed += self.pending;
                // A partly written buffer would leave half a line.
                if let Dest::File(f) = &mut self.dest {
                    let _ = f.set_len(self.len);
                }
            }
        }
        self.pending = 0;
        self.buf.clear();
        result
    }

    /// True when the file should be rotated: `bytes` reached or open for
    /// `age`.
    pub(super) fn due(&self, bytes: Option<u64>, age: Option<std::time::Duration>) -> bool {
        self.path.is_some()
            && (bytes.is_some_and(|b| self.len + self.buf.len() as u64 >= b)
                || age.is_some_and(|a| self.opened.elapsed() >= a))
    }

    /// Writes the buffer out, renames the file aside when `rotate`
    /// (`FILE.<unix seconds>`, `.N` added if taken), and opens the path
    /// anew (appending: after an outside rename, a new file).
    ///
    /// # Errors
    ///
    /// Writing, renaming or opening.
    pub(super) fn reopen(&mut self, rotate: bool) -> io::Result<()> {
        self.push_out()?;
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if rotate {
            std::fs::rename(&path, rotated_name(&path))?;
        }
        let (f, len, trimmed) = open_file(&path, true)?;
        self.dest = Dest::File(f);
        self.len = len;
        self.trimmed += trimmed;
        self.opened = Instant::now();
        Ok(())
    }
}

/// `path.<unix seconds>`, or `path.<unix seconds>.N` if taken.
fn rotated_name(path: &Path) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut target = PathBuf::from(format!("{}.{secs}", path.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.{secs}.{n}", path.display()));
        n += 1;
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fs-recfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_full_device_counts_every_record_failed_and_none_written() {
        let mut f = RecordFile::open(Some(Path::new("/dev/full")), true).unwrap();
        for _ in 0..3 {
            f.write_all(b"{\"a\":1}\n").unwrap();
            f.end_record().unwrap();
        }
        assert_eq!((f.written, f.failed), (0, 0), "nothing accepted yet");
        let e = f.flush().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!((f.written, f.failed), (0, 3));
    }

    #[test]
    fn appending_trims_a_partial_last_line_and_keeps_whole_ones() {
        let d = dir("trim");
        let p = d.join("eve.json");
        std::fs::write(&p, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let mut f = RecordFile::open(Some(&p), true).unwrap();
        assert_eq!(f.trimmed, 5);
        f.write_all(b"{\"a\":3}\n").unwrap();
        f.end_record().unwrap();
        f.flush().unwrap();
        assert_eq!(f.written, 1);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        // Truncating mode starts afresh.
        let mut f = RecordFile::open(Some(&p), false).unwrap();
        f.write_all(b"x\n").unwrap();
        f.end_record().unwrap();
        f.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_is_refused_with_the_reason() {
        let d = dir("isdir");
        let e = RecordFile::open(Some(&d), true).err().unwrap();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
