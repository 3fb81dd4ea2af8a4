//! The version handshake against a daemon of another version: a fake `sited` in this
//! test speaks the real protocol (tarpc over the socket, through `sited-proto`) but
//! answers `hello` with another protocol number. `sitectl` must refuse it, say which is
//! older, and offer `sitectl daemon restart` — which must then work.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sited_proto::{
    Error, Hello, LogLine, LogQuery, PROTOCOL_VERSION, SiteInfo, SiteSpec, Sited, Target,
};
use sited_tests::{DEADLINE, Home, wait_until};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};

/// A daemon of another version. Its pid is this test's; on `shutdown` it lets go of the
/// socket and lock as a real one does.
#[derive(Debug, Clone)]
struct Fake {
    version: &'static str,
    protocol: u32,
    socket: PathBuf,
    lock: PathBuf,
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl Fake {
    fn called(&self, name: &'static str) {
        self.calls.lock().unwrap().push(name);
    }

    fn refused(&self) -> Error {
        Error::Internal("a fake daemon serves nothing".into())
    }
}

impl Sited for Fake {
    async fn hello(self, _: Context, _: u32) -> Hello {
        self.called("hello");
        Hello {
            version: self.version.to_string(),
            protocol: self.protocol,
            pid: std::process::id(),
        }
    }

    async fn up(self, _: Context, _: SiteSpec) -> Result<SiteInfo, Error> {
        self.called("up");
        Err(self.refused())
    }

    async fn down(self, _: Context, _: Target) -> Result<Vec<SiteInfo>, Error> {
        self.called("down");
        Err(self.refused())
    }

    async fn ps(self, _: Context) -> Vec<SiteInfo> {
        self.called("ps");
        Vec::new()
    }

    async fn logs(self, _: Context, _: LogQuery) -> Result<Vec<LogLine>, Error> {
        self.called("logs");
        Err(self.refused())
    }

    async fn shutdown(self, _: Context) {
        self.called("shutdown");
        let _ = fs::remove_file(&self.socket);
        let _ = fs::remove_file(&self.lock);
    }

    async fn restart(self, _: Context, _: u16) -> Result<SiteInfo, Error> {
        self.called("restart");
        Err(self.refused())
    }

    async fn rebuild(self, _: Context, _: u16) -> Result<SiteInfo, Error> {
        self.called("rebuild");
        Err(self.refused())
    }
}

/// Starts the fake on `home`'s socket, on its own runtime; returns it and the runtime.
fn start_fake(
    home: &Home,
    version: &'static str,
    protocol: u32,
) -> (Fake, tokio::runtime::Runtime) {
    let run = home.socket().parent().unwrap().to_path_buf();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&run)
        .unwrap();
    fs::write(home.lock(), std::process::id().to_string()).unwrap();
    let fake = Fake {
        version,
        protocol,
        socket: home.socket(),
        lock: home.lock(),
        calls: Arc::default(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = {
        let _entered = runtime.enter();
        tokio::net::UnixListener::bind(home.socket()).unwrap()
    };
    let server = fake.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let channel = BaseChannel::with_defaults(sited_proto::transport::transport(stream));
            tokio::spawn(
                channel
                    .execute(server.clone().serve())
                    .for_each(|call| async {
                        tokio::spawn(call);
                    }),
            );
        }
    });
    (fake, runtime)
}

fn mismatch(version: &'static str, protocol: u32) -> String {
    let home = Home::new();
    let (fake, _runtime) = start_fake(&home, version, protocol);
    let output = home.sitectl(&["ps"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert_eq!(
        *fake.calls.lock().unwrap(),
        ["hello"],
        "nothing but the handshake is sent to a daemon of another protocol"
    );
    home.redact(&String::from_utf8_lossy(&output.stderr), &[])
}

#[test]
fn an_older_daemon_is_refused_with_a_way_out() {
    insta::assert_snapshot!(mismatch("0.0.1", PROTOCOL_VERSION - 1));
}

#[test]
fn a_newer_daemon_is_refused_with_a_way_out() {
    insta::assert_snapshot!(mismatch("9.9.9", PROTOCOL_VERSION + 1));
}

#[test]
fn daemon_restart_replaces_a_daemon_of_another_version() {
    let home = Home::new();
    let (fake, _runtime) = start_fake(&home, "0.0.1", PROTOCOL_VERSION - 1);
    let out = home.sitectl_ok(&["daemon", "restart"]);
    assert!(
        out.contains(&format!("sited stopped (pid {})", std::process::id())),
        "{out}"
    );
    assert_eq!(*fake.calls.lock().unwrap(), ["hello", "shutdown"]);
    // The real one now answers, and is not this test.
    assert!(wait_until(DEADLINE, || home.answers()));
    let pid = home.daemon_pid().unwrap();
    assert_ne!(pid, std::process::id());
    let status = home.sitectl_ok(&["daemon", "status"]);
    assert!(
        status.contains(&format!("sited {} running", env!("CARGO_PKG_VERSION"))),
        "{status}"
    );
}
