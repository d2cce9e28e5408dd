//! Which upstream addresses a provider may point at.
//!
//! Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, loopback) stay allowed: in-cluster endpoints
//! such as a vLLM service in the same Kubernetes namespace are a normal setup. Cloud metadata services
//! are refused: an upstream URL pointing there would let anyone who can edit providers read the
//! instance's credentials through the gateway. The check runs twice: on the configured URL (host name
//! or IP literal, including the numeric spellings `inet_aton` accepts) and, in the gateway, on every
//! address a host name resolves to, right before connecting (so DNS cannot smuggle it in).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Metadata endpoints of the large clouds: AWS/GCP/Azure/OpenStack/DigitalOcean/Oracle
/// (169.254.169.254), AWS ECS task metadata (169.254.170.2), Alibaba (100.100.100.200), AWS over IPv6
/// (fd00:ec2::254), Oracle (192.0.0.192).
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];
/// Host names that resolve to a metadata service inside the cloud.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata"];

/// An address block, e.g. `169.254.0.0/16` or `fd00::/8` (operators can refuse more with
/// `--upstream-deny`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpBlock {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<IpBlock, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or block (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0-{max}"))?,
        };
        Ok(IpBlock { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address policy: the built-in metadata addresses plus the operator's extra blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamPolicy {
    pub deny: Vec<IpBlock>,
}

impl UpstreamPolicy {
    /// Why `ip` may not be connected to, or `None`.
    pub fn refuses_ip(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        if is_metadata_ip(ip) {
            return Some(format!("{ip} is a cloud metadata address"));
        }
        self.deny
            .iter()
            .find(|b| b.contains(ip))
            .map(|b| format!("{ip} is in the denied block {}/{}", b.addr, b.prefix))
    }

    /// Why a host (name or literal, as in a URL) may not be used, or `None`. Names are checked again
    /// after resolution, at connect time.
    pub fn refuses_host(&self, host: &str) -> Option<String> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_HOSTS.contains(&name.as_str()) {
            return Some(format!("'{host}' is a cloud metadata host"));
        }
        parse_ip_lenient(host).and_then(|ip| self.refuses_ip(ip))
    }
}

pub fn is_metadata_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => METADATA_V4.contains(&v4),
        IpAddr::V6(v6) => METADATA_V6.contains(&v6),
    }
}

/// The host of an `http(s)://[user@]host[:port][/path]` URL, without brackets for IPv6 literals.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    let host = hostport.split(':').next().unwrap_or("");
    (!host.is_empty()).then_some(host)
}

/// Parses an IP literal the way the system resolver would: standard IPv4 and IPv6, plus the numeric
/// IPv4 spellings `inet_aton` accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`).
pub fn parse_ip_lenient(host: &str) -> Option<IpAddr> {
    let host = host.trim_end_matches('.');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<u32> = host
        .split('.')
        .map(parse_inet_number)
        .collect::<Option<Vec<u32>>>()?;
    let value: u32 = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a <= 0xff && *b <= 0xff_ffff => (a << 24) | b,
        [a, b, c] if *a <= 0xff && *b <= 0xff && *c <= 0xffff => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x <= 0xff) => (a << 24) | (b << 16) | (c << 8) | d,
        _ => return None,
    };
    Some(IpAddr::V4(Ipv4Addr::from(value)))
}

/// One `inet_aton` number: decimal, `0x` hex or leading-zero octal.
fn parse_inet_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return if hex.is_empty() {
            Some(0)
        } else {
            u32::from_str_radix(hex, 16).ok()
        };
    }
    if s.len() > 1 && s.starts_with('0') {
        return u32::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> UpstreamPolicy {
        UpstreamPolicy::default()
    }

    #[test]
    fn metadata_addresses_are_refused_in_every_spelling() {
        for host in [
            "169.254.169.254",
            "metadata.google.internal",
            "METADATA.GOOGLE.INTERNAL.",
            "metadata.goog",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "2852039166",
            "0xa9fea9fe",
            "0251.0376.0251.0376",
            "169.254.43518",
            "169.254.170.2",
            "100.100.100.200",
        ] {
            assert!(p().refuses_host(host).is_some(), "{host}");
        }
    }

    #[test]
    fn private_and_public_addresses_are_allowed() {
        for host in [
            "10.0.0.5",
            "192.168.1.10",
            "172.16.0.1",
            "127.0.0.1",
            "::1",
            "fd12::1",
            "vllm.default.svc.cluster.local",
            "llm.aihosting.mittwald.de",
            "169.254.169.253",
        ] {
            assert!(p().refuses_host(host).is_none(), "{host}");
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://169.254.169.254/latest"), Some("169.254.169.254"));
        assert_eq!(
            url_host("https://u:p@metadata.google.internal:80/x"),
            Some("metadata.google.internal")
        );
        assert_eq!(url_host("http://[fd00:ec2::254]:80/"), Some("fd00:ec2::254"));
        assert_eq!(url_host("http://h"), Some("h"));
        assert_eq!(url_host("nope"), None);
        assert_eq!(url_host("http://:80"), None);
    }

    #[test]
    fn blocks() {
        let b = IpBlock::parse("10.0.0.0/8").unwrap();
        assert!(b.contains("10.200.1.1".parse().unwrap()));
        assert!(!b.contains("11.0.0.1".parse().unwrap()));
        assert!(b.contains("::ffff:10.1.1.1".parse().unwrap()));
        let all = IpBlock::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let one = IpBlock::parse("::1").unwrap();
        assert_eq!(one.prefix, 128);
        assert!(one.contains("::1".parse().unwrap()));
        assert!(IpBlock::parse("10.0.0.0/33").is_err());
        assert!(IpBlock::parse("nope/8").is_err());
        let policy = UpstreamPolicy { deny: vec![b] };
        assert!(policy.refuses_host("10.1.2.3").is_some());
        assert!(policy.refuses_host("192.168.0.1").is_none());
    }

    proptest! {
        #[test]
        fn lenient_parsing_agrees_with_std_on_dotted_quads(a: u8, b: u8, c: u8, d: u8) {
            let s = format!("{a}.{b}.{c}.{d}");
            prop_assert_eq!(parse_ip_lenient(&s), Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))));
        }

        #[test]
        fn every_numeric_spelling_of_an_address_is_the_same_address(v: u32) {
            let ip = Some(IpAddr::V4(Ipv4Addr::from(v)));
            let [a, b, c, d] = v.to_be_bytes();
            prop_assert_eq!(parse_ip_lenient(&v.to_string()), ip);
            prop_assert_eq!(parse_ip_lenient(&format!("{v:#x}")), ip);
            prop_assert_eq!(parse_ip_lenient(&format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}")), ip);
            prop_assert_eq!(parse_ip_lenient(&format!("{a}.{}", v & 0xff_ffff)), ip);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,60}") {
            let _ = parse_ip_lenient(&s);
            let _ = url_host(&s);
            let _ = IpBlock::parse(&s);
            let _ = p().refuses_host(&s);
        }

        #[test]
        fn a_block_contains_exactly_the_addresses_sharing_its_prefix(net: u32, ip: u32, prefix in 0u8..=32) {
            let block = IpBlock { addr: IpAddr::V4(Ipv4Addr::from(net)), prefix };
            let shift = 32 - u32::from(prefix);
            let same = if shift == 32 { true } else { net >> shift == ip >> shift };
            prop_assert_eq!(block.contains(IpAddr::V4(Ipv4Addr::from(ip))), same);
        }
    }
}
