//! Outbound HTTP (media links, webhooks): only `http`/`https`; never cloud-metadata,
//! link-local, unspecified or multicast addresses; private networks and loopback only
//! when `network.allow_private` is on or they are in `network.allow_networks`. Every
//! address a name resolves to is checked when the connection is made, and every redirect
//! hop is checked again, so neither DNS rebinding nor a redirect can reach a refused
//! address. Environment proxies are ignored; an explicit `network.proxy` carries the
//! requests, with each target resolved and checked here before it is requested (every
//! address of the name must be allowed). The proxy resolves the name again itself, so a
//! name that changes its answer in between can still lead it elsewhere: the proxy should
//! refuse private and metadata addresses by its own rules too.
//! Error messages never name the addresses a host resolved to.

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
    /// A name resolved only to refused addresses; which ones is not said, so the message
    /// cannot map an internal network.
    #[error(
        "the host resolves to an address this server may not reach (network.allow_private, network.allow_networks)"
    )]
    ResolvesToRefused,
    #[error("the host name did not resolve")]
    Unresolved,
}

#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Allow loopback and private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    pub allow_private: bool,
    /// Loopback and private networks allowed even without `allow_private` (metadata and
    /// link-local addresses never are).
    pub allow_networks: Arc<[ipnet::IpNet]>,
}

impl UrlPolicy {
    pub fn from_config(config: &crate::config::NetworkConfig) -> Self {
        Self {
            allow_private: config.allow_private,
            allow_networks: config.allow_networks.iter().copied().collect(),
        }
    }

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
                if !self.allow_private
                    && (name == "localhost" || name.ends_with(".localhost"))
                    && !self.allowed_network(IpAddr::V4(Ipv4Addr::LOCALHOST))
                {
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
                if !self.allow_private && !self.allowed_network(ip) {
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
                if !self.allow_private && !self.allowed_network(ip) {
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

impl UrlPolicy {
    fn allowed_network(&self, ip: IpAddr) -> bool {
        self.allow_networks.iter().any(|net| net.contains(&ip))
    }

    /// Checks every address `host` resolves to; `Ok` with the allowed ones. `all`: every
    /// one must be allowed (a proxy will resolve the name itself and may pick any).
    async fn resolve(&self, host: &str, port: u16, all: bool) -> Result<Vec<SocketAddr>, UrlError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| UrlError::Unresolved)?
            .collect();
        if resolved.is_empty() {
            return Err(UrlError::Unresolved);
        }
        let count = resolved.len();
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| self.check_ip(addr.ip()).is_ok())
            .collect();
        if allowed.is_empty() || (all && allowed.len() < count) {
            Err(UrlError::ResolvesToRefused)
        } else {
            Ok(allowed)
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
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = policy.resolve(&host, 0, false).await?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client that enforces a [`UrlPolicy`] on every request and redirect.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: UrlPolicy,
    /// Through `network.proxy`: the proxy resolves names, so targets are checked here first
    /// and redirects are followed here, hop by hop.
    proxied: bool,
}

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

impl Outbound {
    /// Ignores `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`: through a proxy the resolver would
    /// check only the proxy's name, and the proxy would fetch whatever the URL names. An
    /// explicit `proxy` is used, with every target checked before it is requested.
    pub fn new(
        policy: UrlPolicy,
        proxy: Option<&Url>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")));
        let builder = match proxy {
            // The proxy is the operator's own, on whatever network: only targets are checked.
            Some(proxy) => builder
                .proxy(reqwest::Proxy::all(proxy.as_str())?)
                .redirect(reqwest::redirect::Policy::none()),
            None => {
                let hops = policy.clone();
                builder
                    .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
                    .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                        if attempt.previous().len() >= MAX_REDIRECTS {
                            attempt.error("too many redirects")
                        } else if let Err(err) = hops.check_url(attempt.url()) {
                            attempt.error(err)
                        } else {
                            attempt.follow()
                        }
                    }))
            }
        };
        Ok(Self {
            client: builder.build()?,
            policy,
            proxied: proxy.is_some(),
        })
    }

    pub fn policy(&self) -> &UrlPolicy {
        &self.policy
    }

    /// Parses and checks `raw` before anything is requested from it; through a proxy this
    /// also resolves its host and checks every address.
    pub async fn check(&self, raw: &str) -> Result<Url, UrlError> {
        let url = self.policy.parse(raw)?;
        self.check_target(&url).await?;
        Ok(url)
    }

    async fn check_target(&self, url: &Url) -> Result<(), UrlError> {
        if self.proxied
            && let Some(url::Host::Domain(name)) = url.host()
        {
            self.policy
                .resolve(name, url.port_or_known_default().unwrap_or(80), true)
                .await?;
        }
        Ok(())
    }

    /// `GET url` (already checked), following redirects with each hop checked.
    pub async fn get(&self, url: Url) -> Result<reqwest::Response, String> {
        let mut url = url;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|err| describe(&err))?;
            if !(self.proxied && resp.status().is_redirection()) {
                return Ok(resp);
            }
            let Some(next) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| url.join(location).ok())
            else {
                return Ok(resp);
            };
            self.policy.check_url(&next).map_err(|err| err.to_string())?;
            self.check_target(&next).await.map_err(|err| err.to_string())?;
            url = next;
        }
        Err("too many redirects".to_owned())
    }

    /// A `POST` to an already checked URL. Through a proxy, redirects are not followed.
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.post(url)
    }
}

/// What went wrong with an outbound request, in words that act as advice and reveal
/// nothing about the network behind the server (the full cause goes to the debug log).
pub fn describe(err: &reqwest::Error) -> String {
    tracing::debug!(error = ?err, "outbound request failed");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<UrlError>() {
            return refused.to_string();
        }
        source = cause.source();
    }
    if err.is_timeout() {
        "the request timed out"
    } else if err.is_redirect() {
        "a redirect was refused, or there were too many"
    } else if err.is_connect() {
        "could not connect to the host"
    } else if err.is_body() || err.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    }
    .to_owned()
}

/// reqwest and the WhatsApp transport use rustls with the ring provider; installing it once
/// up front avoids rustls' "no process-level provider" panic at the first connection.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_metadata_link_local_and_odd_schemes() {
        let open = UrlPolicy {
            allow_private: true,
            ..Default::default()
        };
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
        let closed = UrlPolicy {
            allow_private: false,
            ..Default::default()
        };
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
        let closed = UrlPolicy {
            allow_private: false,
            ..Default::default()
        };
        let open = UrlPolicy {
            allow_private: true,
            ..Default::default()
        };
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

    #[test]
    fn allowed_networks_open_private_ranges_but_never_metadata() {
        let policy = UrlPolicy {
            allow_private: false,
            allow_networks: vec!["10.0.0.0/24".parse().unwrap(), "127.0.0.1/32".parse().unwrap()].into(),
        };
        assert!(policy.parse("http://10.0.0.7:5678/hook").is_ok());
        assert!(policy.parse("http://127.0.0.1:9/").is_ok());
        assert!(policy.parse("http://localhost:9/").is_ok());
        assert!(policy.parse("http://10.0.1.7/").is_err());
        let everything = UrlPolicy {
            allow_private: false,
            allow_networks: vec!["0.0.0.0/0".parse().unwrap()].into(),
        };
        assert!(everything.parse("http://169.254.169.254/").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_refused_address_does_not_say_which() {
        let closed = UrlPolicy::default();
        let err = closed.resolve("localhost", 80, false).await.unwrap_err();
        assert_eq!(err, UrlError::ResolvesToRefused);
        let text = err.to_string();
        assert!(!text.contains("127.0.0.1") && !text.contains("::1"), "{text}");
    }

    #[tokio::test]
    async fn through_a_proxy_a_name_is_resolved_and_checked_before_the_request() {
        crate::net::install_crypto_provider();
        let proxy = Url::parse("http://127.0.0.1:9").unwrap();
        let second = Duration::from_secs(1);
        let outbound = Outbound::new(UrlPolicy::default(), Some(&proxy), second, second).unwrap();
        let err = outbound
            .check_target(&Url::parse("http://localhost/").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err, UrlError::ResolvesToRefused);
        let direct = Outbound::new(UrlPolicy::default(), None, second, second).unwrap();
        assert!(
            direct
                .check_target(&Url::parse("http://localhost/").unwrap())
                .await
                .is_ok()
        );
    }
}
