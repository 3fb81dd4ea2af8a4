//! Which `Host` a site answers to: the defence against DNS rebinding, where a page from
//! a foreign origin points its own name at 127.0.0.1 and reads the dev server with the
//! browser's blessing. Such a request always carries the foreign *name*; so names are
//! refused unless they are local (`localhost`, `*.localhost`) or were configured with
//! `--host`, and IP literals are accepted only when they are loopback or the address the
//! site is bound to (any literal when it is bound to every interface: a literal cannot
//! be rebound).

use std::net::IpAddr;

/// The `Host` values one site accepts.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// The address the listener is bound to.
    bound: IpAddr,
    /// Names given with `--host`, lower-case, without a trailing dot.
    names: Vec<String>,
}

impl HostPolicy {
    pub fn new(bound: IpAddr, names: impl IntoIterator<Item = String>) -> HostPolicy {
        HostPolicy {
            bound,
            names: names
                .into_iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Loopback only: what a site gets without `--host`.
    pub fn loopback() -> HostPolicy {
        HostPolicy::new(IpAddr::from([127, 0, 0, 1]), [])
    }

    /// Whether a request whose `Host` (or absolute-form authority) is `host` is served.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = strip_port(host) else {
            return false;
        };
        if let Some(literal) = name.strip_prefix('[') {
            // `[v6]`: only IPv6 is written in brackets.
            return literal
                .strip_suffix(']')
                .and_then(|ip| ip.parse::<std::net::Ipv6Addr>().ok())
                .is_some_and(|ip| self.allows_ip(IpAddr::V6(ip)));
        }
        if let Ok(ip) = name.parse::<std::net::Ipv4Addr>() {
            return self.allows_ip(IpAddr::V4(ip));
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return false;
        }
        name.eq_ignore_ascii_case("localhost")
            || ends_with_ignore_case(name, ".localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || ip == self.bound.to_canonical() || self.bound.is_unspecified()
    }
}

impl Default for HostPolicy {
    fn default() -> HostPolicy {
        HostPolicy::loopback()
    }
}

/// `name` of `name:port` (brackets kept on IPv6); `None` when the port is not a number.
fn strip_port(host: &str) -> Option<&str> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        match &host[end + 1..] {
            "" => (&host[..=end], None),
            rest => (&host[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(name)
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_site_accepts_local_names_only() {
        let policy = HostPolicy::loopback();
        for host in [
            "localhost",
            "localhost:5173",
            "LocalHost:5173",
            "localhost.",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:5173",
            "[::1]",
            "[::ffff:127.0.0.1]:1",
            "blog.localhost:1",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in [
            "evil.com",
            "evil.com:5173",
            "rebind.evil.com:5173",
            "localhost.evil.com",
            "localhostx",
            "10.0.0.1",
            "192.168.1.5:5173",
            "2130706433",
            "0x7f.1",
            "[::2]:1",
            "[::1",
            "::1",
            "localhost:http",
            "localhost:",
            "",
            ":5173",
            ".",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
    }

    #[test]
    fn bound_address_and_configured_names_are_accepted() {
        let policy = HostPolicy::new("192.168.1.5".parse().unwrap(), ["Box.LAN.".to_string()]);
        assert!(policy.allows("192.168.1.5:5173"));
        assert!(policy.allows("box.lan:5173"));
        assert!(policy.allows("localhost"));
        assert!(!policy.allows("192.168.1.6:5173"));
        assert!(!policy.allows("evil.com"));
    }

    #[test]
    fn every_literal_is_accepted_on_the_unspecified_address_but_no_foreign_name() {
        let policy = HostPolicy::new("0.0.0.0".parse().unwrap(), []);
        assert!(policy.allows("10.1.2.3:5173"));
        assert!(policy.allows("[fe80::1]:5173"));
        assert!(!policy.allows("evil.com:5173"));
    }
}
