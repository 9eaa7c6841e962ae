//! [`ZeekLogs`]: the logs of one Zeek output directory, as Zeek writes
//! them: conn.log from the start, every other log (ssh, http, dns, ssl,
//! quic) created with its first record, as Zeek writes no empty logs. All
//! share one `uid` per connection (see [`super::zeek`]).
//!
//! Every log file of the directory is opened by one function
//! ([`ZeekLogs::open_file`]), the place a reopen or a rotation hooks in.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::local_nets::LocalNets;
use super::record::{FlowEnd, FlowHeader};
use super::zeek::{ZeekConnWriter, ZeekFormat, ZeekLog, ZeekLogKind};
use super::zeek_dns::ZeekDnsWriter;
use super::zeek_http::ZeekHttpWriter;
use super::zeek_quic::ZeekQuicWriter;
use super::zeek_ssh::ZeekSshWriter;
use super::zeek_ssl::ZeekSslWriter;
use crate::l7::L7Record;
use crate::pipeline::{FAILED, FlowSummary};
use crate::tracker::EndReason;
use crate::view::Timestamp;

type Log<K> = ZeekLog<BufWriter<File>, K>;

/// The logs of one Zeek output directory.
#[derive(Debug)]
pub(super) struct ZeekLogs {
    dir: PathBuf,
    format: ZeekFormat,
    local_nets: LocalNets,
    conn: ZeekConnWriter<BufWriter<File>>,
    ssh: Option<ZeekSshWriter<BufWriter<File>>>,
    http: Option<ZeekHttpWriter<BufWriter<File>>>,
    dns: Option<ZeekDnsWriter<BufWriter<File>>>,
    ssl: Option<ZeekSslWriter<BufWriter<File>>>,
    quic: Option<ZeekQuicWriter<BufWriter<File>>>,
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
    /// Creates `dir` if needed and opens its conn.log; `local_nets` are
    /// Zeek's `Site::local_nets`.
    ///
    /// # Errors
    ///
    /// Creating the directory or conn.log (with the path that failed).
    pub(super) fn open(
        dir: &Path,
        format: ZeekFormat,
        local_nets: LocalNets,
    ) -> Result<Self, (PathBuf, io::Error)> {
        std::fs::create_dir_all(dir).map_err(|e| (dir.to_owned(), e))?;
        let conn = Self::open_file(dir, "conn")
            .and_then(|f| ZeekConnWriter::new(f, format))
            .map_err(|e| (dir.join("conn.log"), e))?;
        Ok(Self {
            dir: dir.to_owned(),
            format,
            local_nets,
            conn,
            ssh: None,
            http: None,
            dns: None,
            ssl: None,
            quic: None,
        })
    }

    /// Opens (truncating) the file of the log whose `#path` is `path`.
    fn open_file(dir: &Path, path: &str) -> io::Result<BufWriter<File>> {
        File::create(dir.join(format!("{path}.log"))).map(BufWriter::new)
    }

    /// The log of kind `K` in `slot`, opened now if this is its first
    /// record.
    fn log<'a, K: ZeekLogKind>(
        dir: &Path,
        format: ZeekFormat,
        slot: &'a mut Option<Log<K>>,
    ) -> io::Result<&'a mut Log<K>> {
        Ok(match slot {
            Some(w) => w,
            None => slot.insert(ZeekLog::new(Self::open_file(dir, K::PATH)?, format)?),
        })
    }

    /// Writes a flow record to conn.log; a flow's final record also writes
    /// its DNS queries that got no answer.
    pub(super) fn flow(&mut self, f: &FlowEnd) -> io::Result<()> {
        let service = f
            .summary
            .as_ref()
            .and_then(FlowSummary::app_proto)
            .and_then(zeek_service);
        let k = f.flow.key.oriented(f.flow.initiator);
        let local = self.local_nets.of(k.src_ip(), k.dst_ip());
        self.conn
            .write_flow_summary(&f.flow, service, f.summary.as_ref(), local)?;
        match &mut self.dns {
            Some(dns) if f.reason != EndReason::ActiveTimeout => dns.flow_ended(f.flow.flow_id),
            _ => Ok(()),
        }
    }

    /// Writes an L7 record to its log.
    pub(super) fn l7(
        &mut self,
        header: &FlowHeader,
        ts: Timestamp,
        record: &L7Record,
    ) -> io::Result<()> {
        let (dir, format) = (self.dir.as_path(), self.format);
        match record {
            L7Record::Ssh(r) => Self::log(dir, format, &mut self.ssh)?
                .write_ssh(header, ts, r)
                .map(drop),
            L7Record::Http(r) => Self::log(dir, format, &mut self.http)?.write_http(header, ts, r),
            L7Record::Tls(r) => Self::log(dir, format, &mut self.ssl)?.write_ssl(header, ts, r),
            // Created by its first IETF QUIC record only.
            L7Record::Quic(r) if !super::zeek_quic::logs(r) => Ok(()),
            L7Record::Quic(r) => Self::log(dir, format, &mut self.quic)?.write_quic(header, ts, r),
            L7Record::Dns(r) => {
                let dns = match &mut self.dns {
                    Some(w) => w,
                    None => self
                        .dns
                        .insert(ZeekDnsWriter::new(Self::open_file(dir, "dns")?, format)?),
                };
                dns.write_dns(header, ts, r)
            }
        }
    }

    /// Records written, all logs.
    pub(super) fn records(&self) -> u64 {
        self.conn.records()
            + self.ssh.as_ref().map_or(0, ZeekLog::records)
            + self.http.as_ref().map_or(0, ZeekLog::records)
            + self.dns.as_ref().map_or(0, ZeekDnsWriter::records)
            + self.ssl.as_ref().map_or(0, ZeekLog::records)
            + self.quic.as_ref().map_or(0, ZeekLog::records)
    }

    /// Flushes every log.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()?;
        self.ssh.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.http.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.dns.as_mut().map_or(Ok(()), ZeekDnsWriter::flush)?;
        self.ssl.as_mut().map_or(Ok(()), ZeekLog::flush)?;
        self.quic.as_mut().map_or(Ok(()), ZeekLog::flush)
    }

    /// Writes what waits (unanswered DNS queries), flushes and closes every
    /// log, with the count of records written.
    pub(super) fn finish(mut self) -> (u64, io::Result<()>) {
        fn close<K: ZeekLogKind>(log: Option<Log<K>>) -> io::Result<()> {
            log.map_or(Ok(()), |w| w.finish().map(drop))
        }
        let pending = self.dns.as_mut().map_or(Ok(()), ZeekDnsWriter::end_all);
        let records = self.records();
        let result = pending
            .and(self.conn.finish().map(drop))
            .and(close(self.ssh))
            .and(close(self.http))
            .and(self.dns.map_or(Ok(()), |w| w.finish().map(drop)))
            .and(close(self.ssl))
            .and(close(self.quic));
        (records, result)
    }
}
