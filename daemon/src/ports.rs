//! TCP ports: binding a site's listener (which is how a port is reserved), choosing the
//! first free one, and naming whoever holds a port we could not get.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use sited_proto::{Error, PortOwner};

/// How far past the first port `up` looks for a free one.
pub const SCAN_SPAN: u16 = 1000;

/// Binds `127.0.0.1:port`. `EADDRINUSE` becomes [`Error::PortInUse`] naming the owner
/// when the OS tells.
pub fn bind(port: u16) -> Result<TcpListener, Error> {
    // std sets SO_REUSEADDR on Unix, so a port whose last connections sit in TIME_WAIT
    // can be bound again at once.
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).map_err(|error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            Error::PortInUse {
                port,
                owner: owner(port),
            }
        } else {
            Error::Bind {
                port,
                message: error.to_string(),
            }
        }
    })
}

/// Binds the first port from `first` upward that is free and not `taken(port)`.
pub fn bind_first_free(first: u16, taken: impl Fn(u16) -> bool) -> Result<TcpListener, Error> {
    let last = first.saturating_add(SCAN_SPAN - 1);
    for port in first..=last {
        if taken(port) {
            continue;
        }
        match bind(port) {
            Ok(listener) => return Ok(listener),
            Err(Error::PortInUse { .. }) => continue,
            Err(other) => return Err(other),
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
        match bind(port) {
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
        let listener = bind_first_free(held, |p| p == held.wrapping_add(1)).unwrap();
        let got = listener.local_addr().unwrap().port();
        assert_ne!(got, held);
        assert_ne!(got, held.wrapping_add(1));
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
