//! TCP ports: where a site listens (127.0.0.1 unless `--host` says otherwise), binding its
//! listener (which is how a port is reserved), choosing the first free one, and naming
//! whoever holds a port we could not get.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use sited_proto::{Error, PortOwner};

/// How far past the first port `up` looks for a free one.
pub const SCAN_SPAN: u16 = 1000;

/// The address a site listens on, from `--host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub ip: IpAddr,
    /// The name it was given by, when it was a name rather than an address.
    pub name: Option<String>,
}

impl Host {
    /// 127.0.0.1, the default: nothing but this machine can connect.
    pub fn loopback() -> Host {
        Host {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            name: None,
        }
    }

    /// Reachable from other machines (neither loopback nor `localhost`).
    pub fn is_exposed(&self) -> bool {
        !self.ip.to_canonical().is_loopback()
    }

    /// Where a browser on this machine reaches a site on `port`: the name when one was
    /// given, loopback for the any-address, else the address itself.
    pub fn url(&self, port: u16) -> String {
        let ip = match self.ip {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        match (&self.name, ip) {
            (Some(name), _) => format!("http://{name}:{port}/"),
            (None, IpAddr::V6(ip)) => format!("http://[{ip}]:{port}/"),
            (None, IpAddr::V4(ip)) => format!("http://{ip}:{port}/"),
        }
    }

    /// What `--host` to remember to get this address back: `None` for the default.
    pub fn persisted(&self) -> Option<String> {
        match &self.name {
            Some(name) => Some(name.clone()),
            None if *self == Host::loopback() => None,
            None => Some(self.ip.to_string()),
        }
    }

    /// Turns `--host` into an address: an IP literal (IPv6 with or without brackets),
    /// `localhost`, or a name looked up in the system resolver (its first address).
    pub async fn resolve(host: Option<&str>) -> Result<Host, Error> {
        let Some(given) = host.map(str::trim) else {
            return Ok(Host::loopback());
        };
        let bad = |message: String| Error::BadHost {
            host: given.to_string(),
            message,
        };
        let literal = given
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(given);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(Host { ip, name: None });
        }
        if given.eq_ignore_ascii_case("localhost") {
            return Ok(Host::loopback());
        }
        let name_ok = !given.is_empty()
            && given.len() <= 253
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !name_ok {
            return Err(bad("not an IP address or a host name".into()));
        }
        let mut addrs = tokio::net::lookup_host((given, 0))
            .await
            .map_err(|e| bad(format!("cannot resolve it: {e}")))?;
        let ip = addrs
            .next()
            .ok_or_else(|| bad("it resolves to no address".into()))?
            .ip();
        Ok(Host {
            ip,
            name: Some(given.to_ascii_lowercase()),
        })
    }
}

/// Binds `ip:port`. `EADDRINUSE` becomes [`Error::PortInUse`] naming the owner when the
/// OS tells.
pub fn bind(ip: IpAddr, port: u16) -> Result<TcpListener, Error> {
    // std sets SO_REUSEADDR on Unix, so a port whose last connections sit in TIME_WAIT
    // can be bound again at once.
    TcpListener::bind(SocketAddr::from((ip, port))).map_err(|error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            Error::PortInUse {
                port,
                owner: owner(port),
            }
        } else {
            Error::Bind {
                port,
                message: format!("{ip}: {error}"),
            }
        }
    })
}

/// Binds the first port from `first` upward on `ip` that is free and not `taken(port)`.
pub fn bind_first_free(
    ip: IpAddr,
    first: u16,
    taken: impl Fn(u16) -> bool,
) -> Result<TcpListener, Error> {
    let last = first.saturating_add(SCAN_SPAN - 1);
    for port in first..=last {
        if taken(port) {
            continue;
        }
        // Not `bind`: who holds a busy port does not matter here, and finding out scans
        // every process's file descriptors.
        match TcpListener::bind(SocketAddr::from((ip, port))) {
            Ok(listener) => return Ok(listener),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
            Err(error) => {
                return Err(Error::Bind {
                    port,
                    message: error.to_string(),
                });
            }
        }
    }
    Err(Error::NoFreePort {
        from: first,
        to: last,
    })
}

/// Who listens on TCP `port`, if the OS will say.
pub fn owner(port: u16) -> Option<PortOwner> {
    platform::owner(port)
}

#[cfg(target_os = "linux")]
mod platform {
    //! `/proc/net/tcp{,6}` gives the socket inode of a listener; `/proc/*/fd` links
    //! name the process holding that inode. Processes of other users are unreadable
    //! and simply not found.

    use std::fs;

    use sited_proto::PortOwner;

    /// `st` column value for a listening socket.
    const TCP_LISTEN: &str = "0A";

    pub fn owner(port: u16) -> Option<PortOwner> {
        let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| fs::read_to_string(path).ok())
            .flat_map(|table| listening_inodes(&table, port))
            .collect();
        if inodes.is_empty() {
            return None;
        }
        let targets: Vec<String> = inodes
            .iter()
            .map(|inode| format!("socket:[{inode}]"))
            .collect();
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(link) = fs::read_link(fd.path()) else {
                    continue;
                };
                if targets.iter().any(|t| link.as_os_str() == t.as_str()) {
                    return Some(PortOwner {
                        pid,
                        command: command(pid),
                    });
                }
            }
        }
        None
    }

    /// Inodes of sockets listening on `port` in one `/proc/net/tcp*` table.
    pub fn listening_inodes(table: &str, port: u16) -> Vec<String> {
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local = fields.get(1)?;
                let state = fields.get(3)?;
                let inode = fields.get(9)?;
                let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
                (local_port == port && *state == TCP_LISTEN && *inode != "0")
                    .then(|| inode.to_string())
            })
            .collect()
    }

    fn command(pid: u32) -> String {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect();
        if text.is_empty() {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        } else {
            text.join(" ")
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    //! `lsof` is on every macOS and most BSDs: `-Fpc` prints `p<pid>` and `c<command>`.

    use sited_proto::PortOwner;

    pub fn owner(port: u16) -> Option<PortOwner> {
        let output = std::process::Command::new("lsof")
            .args(["-nP", &format!("-iTCP:{port}"), "-sTCP:LISTEN", "-Fpc"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let pid = text
            .lines()
            .find_map(|l| l.strip_prefix('p')?.parse().ok())?;
        let command = text
            .lines()
            .find_map(|l| l.strip_prefix('c'))
            .unwrap_or("?")
            .to_string();
        Some(PortOwner { pid, command })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_port_names_this_process() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        match bind(IpAddr::V4(Ipv4Addr::LOCALHOST), port) {
            Err(Error::PortInUse { port: p, owner }) => {
                assert_eq!(p, port);
                if cfg!(target_os = "linux") {
                    let owner = owner.expect("/proc names the owner");
                    assert_eq!(owner.pid, std::process::id());
                }
            }
            other => panic!("expected PortInUse, got {other:?}"),
        }
    }

    #[test]
    fn first_free_skips_taken_and_registered_ports() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let held = holder.local_addr().unwrap().port();
        // Start at the held port and also pretend the next one is registered.
        let listener = bind_first_free(Ipv4Addr::LOCALHOST.into(), held, |p| {
            p == held.wrapping_add(1)
        })
        .unwrap();
        let got = listener.local_addr().unwrap().port();
        assert_ne!(got, held);
        assert_ne!(got, held.wrapping_add(1));
    }

    #[tokio::test]
    async fn hosts_resolve_to_addresses_and_urls() {
        let default = Host::resolve(None).await.unwrap();
        assert_eq!(default, Host::loopback());
        assert!(!default.is_exposed());
        assert_eq!(default.url(5173), "http://127.0.0.1:5173/");
        assert_eq!(
            Host::resolve(Some("localhost")).await.unwrap(),
            Host::loopback()
        );
        let v6 = Host::resolve(Some("[::1]")).await.unwrap();
        assert_eq!(v6.ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(v6.url(8080), "http://[::1]:8080/");
        let lan = Host::resolve(Some("192.168.1.5")).await.unwrap();
        assert!(lan.is_exposed());
        assert_eq!(lan.url(80), "http://192.168.1.5:80/");
        let any = Host::resolve(Some("0.0.0.0")).await.unwrap();
        assert!(any.is_exposed());
        assert_eq!(any.url(1), "http://127.0.0.1:1/");
        assert!(!Host::resolve(Some("127.0.0.2")).await.unwrap().is_exposed());
        for bad in ["", "a b", "evil/../x", "[::1"] {
            assert!(
                matches!(Host::resolve(Some(bad)).await, Err(Error::BadHost { .. })),
                "{bad}"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_net_tcp_parsing() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0\n\
           1: 0100007F:1435 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(platform::listening_inodes(table, 5173), ["12345"]);
        assert!(platform::listening_inodes(table, 80).is_empty());
    }
}
