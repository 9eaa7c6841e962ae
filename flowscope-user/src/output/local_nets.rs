//! [`LocalNets`]: the networks `--local-nets` calls local, Zeek's
//! `Site::local_nets`, for conn.log's `local_orig` and `local_resp`.

use std::net::IpAddr;
use std::str::FromStr;

/// A list of networks (`CIDR,CIDR,…`); empty when none was given, and then
/// Zeek leaves `local_orig`/`local_resp` unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNets(Vec<(IpAddr, u8)>);

/// A network that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network (ADDRESS/PREFIX, e.g. 10.0.0.0/8 or 2001:db8::/32)")]
pub struct BadNet(String);

impl FromStr for LocalNets {
    type Err = BadNet;

    fn from_str(s: &str) -> Result<Self, BadNet> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                let bad = || BadNet(n.to_owned());
                let (addr, len) = n.split_once('/').ok_or_else(bad)?;
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(bad());
                }
                Ok((addr, len))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// `a` as 128 bits (IPv4 in the low 32) and its width.
fn bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl LocalNets {
    /// True when no network was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the networks (IPv4 in IPv4 networks only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, width) = bits(ip);
        self.0.iter().any(|&(net, len)| {
            let (n, net_width) = bits(net);
            let host = u32::from(net_width - len);
            net_width == width && a.checked_shr(host) == n.checked_shr(host)
        })
    }

    /// Zeek's `local_orig`/`local_resp` of a connection: unset without
    /// networks.
    pub fn of(&self, orig: IpAddr, resp: IpAddr) -> Option<[bool; 2]> {
        (!self.is_empty()).then(|| [self.contains(orig), self.contains(resp)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_by_prefix() {
        assert_eq!(
            "10.0.0.0/8,0.0.0.0/0x".parse::<LocalNets>(),
            Err(BadNet("0.0.0.0/0x".into())),
            "a bad entry fails the list"
        );
        let nets: LocalNets = "10.0.0.0/8, 172.16.0.0/12,2001:db8::/32".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(nets.contains(ip("10.255.1.2")));
        assert!(nets.contains(ip("172.31.255.255")));
        assert!(!nets.contains(ip("172.32.0.1")));
        assert!(nets.contains(ip("2001:db8::1")));
        assert!(!nets.contains(ip("2001:db9::1")));
        assert!(!nets.contains(ip("::ffff:10.0.0.1")), "IPv6 is not IPv4");
        assert_eq!(
            nets.of(ip("10.0.0.1"), ip("198.51.100.1")),
            Some([true, false])
        );
        assert_eq!(
            LocalNets::default().of(ip("10.0.0.1"), ip("10.0.0.2")),
            None
        );
        let all: LocalNets = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("198.51.100.1")));
        assert!("10.0.0.0/33".parse::<LocalNets>().is_err());
        assert!("10.0.0.0".parse::<LocalNets>().is_err());
    }
}
