//! Who is calling: the TCP peer, or, when the peer is one of `server.trusted_proxies`, the
//! client address the proxy names (`Forwarded`, else `X-Forwarded-For`, else
//! `X-Real-IP`). The address the login throttle counts and the log shows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use poem::Request;
use poem::http::HeaderMap;

use crate::config::ForwardedHeader;

#[derive(Debug, Clone)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::new(Vec::new(), ForwardedHeader::XForwardedFor)
    }
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { nets, header }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer`: walking the forwarding chain from
    /// the right, the first address that is not a trusted proxy (a client can write any
    /// chain it likes, but only the entries our own proxies appended are believed).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return unmapped(peer);
        }
        let mut client = peer;
        for hop in forwarding_chain(headers, self.header).iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        break;
                    }
                }
                // `unknown` or an obfuscated name: nothing further left can be believed.
                None => break,
            }
        }
        unmapped(client)
    }
}

/// The caller's address as [`TrustedProxies::client`] sees it; an unknown peer counts as
/// remote, never as loopback.
pub fn client_ip(req: &Request) -> IpAddr {
    let peer = peer_ip(req);
    match req.data::<crate::api::AppState>() {
        Some(state) => state.trusted_proxies.client(peer, req.headers()),
        None => peer,
    }
}

/// The TCP peer's address.
pub fn peer_ip(req: &Request) -> IpAddr {
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The addresses a request passed through, client first, as `header` lists them; `None`
/// for a hop that names no address.
fn forwarding_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match header {
        ForwardedHeader::Forwarded => values("forwarded")
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(key, _)| key.eq_ignore_ascii_case("for"))
                    .and_then(|(_, node)| parse_node(node))
            })
            .collect(),
        ForwardedHeader::XForwardedFor => values("x-forwarded-for").iter().map(|n| parse_node(n)).collect(),
        // One address, not a chain: the last one a proxy set.
        ForwardedHeader::XRealIp => values("x-real-ip").last().map(|n| parse_node(n)).into_iter().collect(),
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn proxies_with(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()],
            header,
        )
    }

    fn proxies() -> TrustedProxies {
        proxies_with(ForwardedHeader::XForwardedFor)
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let spoof = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(proxies().client(stranger, &spoof), stranger);
        assert_eq!(
            proxies().client("127.0.0.1".parse().unwrap(), &spoof),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            TrustedProxies::default().client("127.0.0.1".parse().unwrap(), &spoof),
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let local: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        // The client wrote "1.1.1.1" itself; our proxies appended the rest.
        let chain = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        assert_eq!(
            proxies().client(local, &chain),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let forwarded = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::17]:4711";proto=https"#)]);
        let rfc = proxies_with(ForwardedHeader::Forwarded);
        assert_eq!(rfc.client(local, &forwarded), "2001:db8::17".parse::<IpAddr>().unwrap());
        let real = headers(&[("x-real-ip", "203.0.113.5")]);
        let real_ip = proxies_with(ForwardedHeader::XRealIp);
        assert_eq!(real_ip.client(local, &real), "203.0.113.5".parse::<IpAddr>().unwrap());
        let unknown = headers(&[("forwarded", "for=unknown, for=10.9.9.9")]);
        assert_eq!(rfc.client(local, &unknown), "10.9.9.9".parse::<IpAddr>().unwrap());
        // Headers the proxy does not write are the client's own: ignored.
        let smuggled = headers(&[("forwarded", "for=198.51.100.1"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies().client(local, &smuggled),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(proxies().client(local, &forwarded), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(proxies().client(local, &HeaderMap::new()), IpAddr::from([127, 0, 0, 1]));
    }
}
