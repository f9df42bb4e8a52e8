//! Outbound HTTP (media links, webhooks): only `http`/`https`; never cloud-metadata,
//! link-local, unspecified or multicast addresses; private networks and loopback only
//! when `network.allow_private` is on. Every address a name resolves to is checked when
//! the connection is made, and every redirect hop is checked again, so neither DNS
//! rebinding nor a redirect can reach a refused address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// Names of cloud metadata services, refused before any lookup.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata", "instance-data"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("only http and https URLs are allowed, not `{0}`")]
    Scheme(String),
    #[error("URLs with credentials (user:password@) are not allowed")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("`{0}` is a cloud metadata service and is refused")]
    Metadata(String),
    #[error("{0} is a {1} address and is refused")]
    Forbidden(IpAddr, &'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct UrlPolicy {
    /// Allow loopback and private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Parses and checks a URL before anything is fetched from it.
    pub fn parse(&self, raw: &str) -> Result<Url, UrlError> {
        let url = Url::parse(raw.trim()).map_err(|_| UrlError::Invalid(raw.to_owned()))?;
        self.check_url(&url)?;
        Ok(url)
    }

    pub fn check_url(&self, url: &Url) -> Result<(), UrlError> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(UrlError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        match url.host() {
            None => Err(UrlError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&name.as_str()) {
                    return Err(UrlError::Metadata(name));
                }
                if !self.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
                    return Err(UrlError::Forbidden(IpAddr::V4(Ipv4Addr::LOCALHOST), "loopback"));
                }
                Ok(())
            }
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        // An IPv6 address that carries an IPv4 one (NAT64, IPv4-compatible, 6to4) reaches
        // that IPv4 address: it is judged as that address.
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = embedded_ipv4(v6)
        {
            return self.check_ip(IpAddr::V4(v4)).map_err(|err| match err {
                UrlError::Forbidden(_, what) => UrlError::Forbidden(ip, what),
                other => other,
            });
        }
        let refuse = |what| Err(UrlError::Forbidden(ip, what));
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                if v4.is_unspecified() || v4.is_broadcast() || o[0] == 0 {
                    return refuse("unspecified");
                }
                if v4.is_link_local() {
                    return refuse("link-local (cloud metadata)");
                }
                if v4 == Ipv4Addr::new(100, 100, 100, 200) || v4 == Ipv4Addr::new(192, 0, 0, 192) {
                    return refuse("cloud metadata");
                }
                if v4.is_multicast() || o[0] >= 240 {
                    return refuse("multicast or reserved");
                }
                if !self.allow_private {
                    if v4.is_loopback() {
                        return refuse("loopback");
                    }
                    if v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                        return refuse("private network");
                    }
                }
                Ok(())
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                if v6.is_unspecified() {
                    return refuse("unspecified");
                }
                if (s[0] & 0xffc0) == 0xfe80 {
                    return refuse("link-local");
                }
                if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                    return refuse("cloud metadata");
                }
                if v6.is_multicast() {
                    return refuse("multicast");
                }
                if !self.allow_private {
                    if v6.is_loopback() {
                        return refuse("loopback");
                    }
                    // Unique-local, the deprecated site-local, and local-use NAT64.
                    if (s[0] & 0xfe00) == 0xfc00
                        || (s[0] & 0xffc0) == 0xfec0
                        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                    {
                        return refuse("private network");
                    }
                }
                Ok(())
            }
        }
    }
}

/// The IPv4 address inside a NAT64 (`64:ff9b::/96`), IPv4-compatible (`::a.b.c.d`) or 6to4
/// (`2002::/16`) address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// Resolves names and drops every address the policy refuses.
struct GuardedResolver {
    policy: UrlPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(err) => {
                        refused = Some(err);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(err) => Box::new(err),
                    None => format!("{host} did not resolve").into(),
                };
                return Err(err);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client that enforces `policy` on every connection and redirect. It ignores
/// `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`: through a proxy the resolver would check only
/// the proxy's name, and the proxy would fetch whatever the URL names.
pub fn guarded_client(
    policy: UrlPolicy,
    connect_timeout: Duration,
    timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if let Err(err) = policy.check_url(attempt.url()) {
                attempt.error(err)
            } else {
                attempt.follow()
            }
        }))
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The innermost cause of a reqwest error, for messages people can act on.
pub fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    if err.is_timeout() {
        "the request timed out".to_owned()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_metadata_link_local_and_odd_schemes() {
        let open = UrlPolicy { allow_private: true };
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://0.0.0.0:8080/",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(open.parse(bad).is_err(), "{bad}");
        }
        assert!(open.parse("http://127.0.0.1:9000/a.png").is_ok());
        assert!(open.parse("https://example.com/a.png").is_ok());
    }

    #[test]
    fn private_networks_are_refused_when_configured() {
        let closed = UrlPolicy { allow_private: false };
        for bad in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://100.64.0.1/",
        ] {
            assert!(closed.parse(bad).is_err(), "{bad}");
        }
        assert!(closed.parse("http://93.184.216.34/").is_ok());
    }

    #[test]
    fn ipv6_forms_that_carry_a_refused_address_are_refused() {
        let closed = UrlPolicy { allow_private: false };
        let open = UrlPolicy { allow_private: true };
        for bad in [
            "http://[64:ff9b::a00:1]/",   // NAT64 of 10.0.0.1
            "http://[64:ff9b::7f00:1]/",  // NAT64 of 127.0.0.1
            "http://[::a00:1]/",          // IPv4-compatible 10.0.0.1
            "http://[2002:c0a8:101::1]/", // 6to4 of 192.168.1.1
            "http://[fec0::1]/",          // site-local
            "http://[64:ff9b:1::a00:1]/", // local-use NAT64
        ] {
            assert!(closed.parse(bad).is_err(), "{bad}");
        }
        // Metadata stays refused however it is written, even where private networks are allowed.
        for bad in [
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
        ] {
            assert!(open.parse(bad).is_err(), "{bad}");
        }
        // A NAT64 address of a public host is fine; so is loopback where private is allowed.
        assert!(closed.parse("http://[64:ff9b::5db8:d822]/").is_ok());
        assert!(open.parse("http://[::1]:9000/").is_ok());
    }
}
