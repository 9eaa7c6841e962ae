//! [`ZeekLogs`]: the logs of one Zeek output directory, as Zeek writes
//! them: conn.log from the start, every other log (ssh, http, dns, ssl,
//! quic, tunnel) created with its first record, as Zeek writes no empty logs. All
//! share one `uid` per connection (see [`super::zeek`]).
//!
//! Every log file of the directory is opened by one function
//! ([`ZeekLogs::open_file`]): a [`RecordFile`] that counts each log line
//! written once the kernel took it; [`ZeekLogs::cycle`] reopens or
//! rotates them (`#close` on the old file, a header on the new one).

use std::io;
use std::path::{Path, PathBuf};

use super::file::RecordFile;
use super::local_nets::LocalNets;
use super::outputs::FileOptions;
use super::record::{FlowEnd, FlowHeader};
use super::zeek::{ZeekConnWriter, ZeekFormat, ZeekLog, ZeekLogKind};
use super::zeek_dns::ZeekDnsWriter;
use super::zeek_http::ZeekHttpWriter;
use super::zeek_quic::ZeekQuicWriter;
use super::zeek_ssh::ZeekSshWriter;
use super::zeek_ssl::ZeekSslWriter;
use super::zeek_tunnel::{TunnelAction, ZeekTunnelWriter};
use crate::extractor::Encap;
use crate::l7::L7Record;
use crate::pipeline::FAILED;
use crate::tracker::EndReason;
use crate::view::Timestamp;

type Log<K> = ZeekLog<RecordFile, K>;

/// The logs of one Zeek output directory.
#[derive(Debug)]
pub(super) struct ZeekLogs {
    dir: PathBuf,
    format: ZeekFormat,
    local_nets: LocalNets,
    append: bool,
    conn: ZeekConnWriter<RecordFile>,
    ssh: Option<ZeekSshWriter<RecordFile>>,
    http: Option<ZeekHttpWriter<RecordFile>>,
    dns: Option<ZeekDnsWriter<RecordFile>>,
    ssl: Option<ZeekSslWriter<RecordFile>>,
    quic: Option<ZeekQuicWriter<RecordFile>>,
    tunnel: Option<ZeekTunnelWriter<RecordFile>>,
}

/// Zeek's `service` name of a flow's application protocol: Zeek's DNS
/// analyzer also takes mDNS and LLMNR; SSDP has no Zeek analyzer, and Zeek
/// leaves a flow no analyzer recognised unset.
fn zeek_service(proto: &'static str) -> Option<&'static str> {
    match proto {
        "tls" => Some("ssl"),
        "mdns" | "llmnr" => Some("dns"),
        "ssdp" | FAILED => None,
        other => Some(other),
    }
}

impl ZeekLogs {
    /// Creates `dir` if needed and opens its conn.log (appended to, or
    /// truncated unless `append`); `local_nets` are Zeek's
    /// `Site::local_nets`.
    ///
    /// # Errors
    ///
    /// Creating the directory or conn.log (with the path that failed).
    pub(super) fn open(
        dir: &Path,
        format: ZeekFormat,
        local_nets: LocalNets,
        append: bool,
    ) -> Result<Self, (PathBuf, io::Error)> {
        std::fs::create_dir_all(dir).map_err(|e| (dir.to_owned(), e))?;
        let conn = Self::open_file(dir, "conn", append)
            .and_then(|f| ZeekConnWriter::new(f, format))
            .map_err(|e| (dir.join("conn.log"), e))?;
        Ok(Self {
            dir: dir.to_owned(),
            format,
            local_nets,
            append,
            conn,
            ssh: None,
            http: None,
            dns: None,
            ssl: None,
            quic: None,
            tunnel: None,
        })
    }

    /// Opens the file of the log whose `#path` is `path`.
    fn open_file(dir: &Path, path: &str, append: bool) -> io::Result<RecordFile> {
        RecordFile::open_lines(&dir.join(format!("{path}.log")), append)
    }

    /// The log of kind `K` in `slot`, opened now if this is its first
    /// record.
    fn log<'a, K: ZeekLogKind>(
        (dir, format, append): (&Path, ZeekFormat, bool),
        slot: &'a mut Option<Log<K>>,
    ) -> io::Result<&'a mut Log<K>> {
        Ok(match slot {
            Some(w) => w,
            None => slot.insert(ZeekLog::new(
                Self::open_file(dir, K::PATH, append)?,
                format,
            )?),
        })
    }

    /// Writes a flow record to conn.log (a GRE or IP-in-IP carrier has no
    /// conn.log record in Zeek, only its tunnel.log ones); a flow's final
    /// record also writes its DNS queries that got no answer, a carrier's
    /// its tunnel's end.
    pub(super) fn flow(&mut self, f: &FlowEnd) -> io::Result<()> {
        let carries = f.flow.carries;
        if carries.is_none_or(Encap::over_udp) {
            let service = f.app_proto().and_then(zeek_service);
            let k = f.flow.key.oriented(f.flow.initiator);
            let local = self.local_nets.of(k.src_ip(), k.dst_ip());
            let parent = f.carrier.as_ref().map(FlowHeader::of_carrier);
            self.conn.write_flow_summary(
                &f.flow,
                service,
                f.summary.as_ref(),
                local,
                parent.as_ref(),
            )?;
        }
        if let Some(encap) = carries
            && let Some(action) = TunnelAction::of_end(encap, f.reason)
        {
            self.tunnel(&FlowHeader::of(&f.flow), encap, f.flow.end(), action)?;
        }
        match &mut self.dns {
            Some(dns) if f.reason != EndReason::ActiveTimeout => dns.flow_ended(f.flow.flow_id),
            _ => Ok(()),
        }
    }

    /// Writes a tunnel.log record.
    pub(super) fn tunnel(
        &mut self,
        carrier: &FlowHeader,
        encap: Encap,
        ts: Timestamp,
        action: TunnelAction,
    ) -> io::Result<()> {
        let at = (self.dir.as_path(), self.format, self.append);
        Self::log(at, &mut self.tunnel)?.write_tunnel(carrier, encap, ts, action)
    }

    /// Writes an L7 record to its log.
    pub(super) fn l7(
        &mut self,
        header: &FlowHeader,
        ts: Timestamp,
        record: &L7Record,
    ) -> io::Result<()> {
        let at = (self.dir.as_path(), self.format, self.append);
        match record {
            L7Record::Ssh(r) => Self::log(at, &mut self.ssh)?
                .write_ssh(header, ts, r)
                .map(drop),
            L7Record::Http(r) => Self::log(at, &mut self.http)?.write_http(header, r),
            L7Record::Tls(r) => Self::log(at, &mut self.ssl)?.write_ssl(header, ts, r),
            // Created by its first IETF QUIC record only.
            L7Record::Quic(r) if !super::zeek_quic::logs(r) => Ok(()),
            L7Record::Quic(r) => Self::log(at, &mut self.quic)?.write_quic(header, ts, r),
            L7Record::Dns(r) => {
                let dns = match &mut self.dns {
                    Some(w) => w,
                    None => self.dns.insert(ZeekDnsWriter::new(
                        Self::open_file(at.0, "dns", at.2)?,
                        at.1,
                    )?),
                };
                dns.write_dns(header, ts, r)
            }
        }
    }

    /// Flushes every log.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()?;
        self.ssh.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.http.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.dns.as_mut().map_or(Ok(()), ZeekDnsWriter::flush)?;
        self.ssl.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.quic.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.tunnel.as_mut().map_or(Ok(()), ZeekLog::flush)
    }

    /// Every open log file, read-only.
    fn files(&self) -> impl Iterator<Item = &RecordFile> {
        [
            Some(self.conn.get_ref()),
            self.ssh.as_ref().map(ZeekLog::get_ref),
            self.http.as_ref().map(ZeekLog::get_ref),
            self.dns.as_ref().map(|d| d.log_ref().get_ref()),
            self.ssl.as_ref().map(ZeekLog::get_ref),
            self.quic.as_ref().map(ZeekLog::get_ref),
            self.tunnel.as_ref().map(ZeekLog::get_ref),
        ]
        .into_iter()
        .flatten()
    }

    /// Log lines of every log: written, failed, still buffered, and bytes
    /// of partial lines trimmed when opening.
    pub(super) fn counts(&self) -> LineCounts {
        let mut c = LineCounts::default();
        for f in self.files() {
            c.written += f.written;
            c.failed += f.failed;
            c.pending += f.pending();
            c.trimmed += f.trimmed;
        }
        c
    }

    /// Reopens every log file (`force`: SIGHUP) or rotates those past
    /// `files`' bounds; returns how many were rotated.
    ///
    /// # Errors
    ///
    /// Writing, renaming or opening a file.
    pub(super) fn cycle(&mut self, files: &FileOptions, force: bool) -> io::Result<u64> {
        fn one<K: ZeekLogKind>(
            log: Option<&mut Log<K>>,
            files: &FileOptions,
            force: bool,
        ) -> io::Result<u64> {
            match log {
                Some(l) if force || l.get_ref().due(files.rotate_bytes, files.rotate_after) => {
                    l.cycle(|f| f.reopen(!force)).map(|()| u64::from(!force))
                }
                _ => Ok(0),
            }
        }
        Ok(one(Some(&mut self.conn), files, force)?
            + one(self.ssh.as_mut(), files, force)?
            + one(self.http.as_mut(), files, force)?
            + one(self.dns.as_mut().map(ZeekDnsWriter::log_mut), files, force)?
            + one(self.ssl.as_mut(), files, force)?
            + one(self.quic.as_mut(), files, force)?
            + one(self.tunnel.as_mut(), files, force)?)
    }

    /// Writes what waits (unanswered DNS queries), then closes every log
    /// (`#close`, flushed); the counts stay.
    ///
    /// # Errors
    ///
    /// The first write that failed.
    pub(super) fn close(&mut self) -> io::Result<()> {
        let pending = self.dns.as_mut().map_or(Ok(()), ZeekDnsWriter::end_all);
        let close = |r: Option<io::Result<()>>| r.unwrap_or(Ok(()));
        pending
            .and(self.conn.close())
            .and(close(self.ssh.as_mut().map(ZeekLog::close)))
            .and(close(self.http.as_mut().map(ZeekLog::close)))
            .and(close(self.dns.as_mut().map(|d| d.log_mut().close())))
            .and(close(self.ssl.as_mut().map(ZeekLog::close)))
            .and(close(self.quic.as_mut().map(ZeekLog::close)))
            .and(close(self.tunnel.as_mut().map(ZeekLog::close)))
    }
}

/// Log lines of a Zeek output's logs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LineCounts {
    /// Accepted by the kernel.
    pub(super) written: u64,
    /// Their write failed.
    pub(super) failed: u64,
    /// Still buffered.
    pub(super) pending: u64,
    /// Bytes of partial lines trimmed when opening for appending.
    pub(super) trimmed: u64,
}
