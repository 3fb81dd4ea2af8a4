//! Why a command failed: a message, the causes behind it (outermost first), a concrete
//! hint, and the exit code its kind maps to. `output` prints it as `error: …`,
//! `caused by: …` lines and `hint: …`.

use std::fmt;

use sited_proto::Error;

/// What kind of failure, which fixes the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command line was wrong (exit 2).
    Usage,
    /// No daemon could be reached or started, or it speaks another protocol (exit 3).
    Unreachable,
    /// The daemon refused, a site failed, or the command could not do all it was asked
    /// (exit 1).
    Refused,
    /// Whoever read the output went away (`sitectl logs -f | head`): the command ends
    /// quietly, exit 0.
    OutputClosed,
}

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    /// Underlying causes, outermost first.
    pub causes: Vec<String>,
    pub hint: Option<String>,
    /// Already printed (a command that carries on past failures says each as it
    /// happens); only its exit code is left to use.
    pub said: bool,
}

impl Failure {
    fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
            said: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Usage, message)
    }

    pub fn unreachable(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Unreachable, message)
    }

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Refused, message)
    }

    /// `sitectl service` could not do all it was asked.
    pub fn service(message: String, hint: Option<String>) -> Failure {
        Failure {
            hint,
            ..Failure::refused(message)
        }
    }

    /// A site is up (or was rebuilt) but failed.
    pub fn site(port: u16, reason: &str) -> Failure {
        Failure::refused(format!("the site on port {port} failed"))
            .because(reason)
            .hint(format!(
                "`sitectl logs {port}` tells what happened; once the cause is fixed, \
                 `sitectl restart {port}` tries again"
            ))
    }

    /// The daemon refused a call.
    pub fn daemon(error: Error) -> Failure {
        let failure = match &error {
            // The OS's words are the cause; the message says what could not be done.
            Error::Bind { port, message } => {
                Failure::refused(format!("cannot listen on port {port}")).because(message)
            }
            Error::RootUnreadable { path, message } => {
                Failure::refused(format!("site root {} cannot be read", path.display()))
                    .because(message)
            }
            Error::SiteFailed { reason } => Failure::refused("the site failed").because(reason),
            _ => Failure::refused(error.to_string()),
        };
        match hint(&error) {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }

    /// Adds a cause (after those already there).
    pub fn because(mut self, cause: impl fmt::Display) -> Failure {
        let cause = cause.to_string();
        if !cause.is_empty() {
            self.causes.push(cause);
        }
        self
    }

    /// Adds `error` and every error behind it as causes. A source that its error's
    /// message already quotes (`cannot create X: {source}`) is not said twice.
    pub fn because_of(mut self, error: &(dyn std::error::Error + 'static)) -> Failure {
        let mut next = Some(error);
        while let Some(error) = next {
            let text = error.to_string();
            if !self.causes.last().is_some_and(|last| last.ends_with(&text)) {
                self = self.because(text);
            }
            next = error.source();
        }
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Unreachable => 3,
            Kind::Refused => 1,
            Kind::OutputClosed => 0,
        }
    }
}

/// Writing the output failed: quietly done if the reader went away, else said.
impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure {
                said: true,
                ..Failure::new(Kind::OutputClosed, "the output was closed")
            }
        } else {
            Failure::refused("cannot write the output").because(error)
        }
    }
}

/// What to do about an error the daemon returned.
fn hint(error: &Error) -> Option<String> {
    Some(match error {
        Error::PortInUse {
            port,
            owner: Some(owner),
        } => format!(
            "stop that program (`kill {}`) or choose another port, e.g. `--port {}`",
            owner.pid,
            port.saturating_add(1)
        ),
        Error::PortInUse { port, owner: None } => format!(
            "another program holds it (`ss -ltnp 'sport = :{port}'` or `lsof -i :{port}` \
             names it); or choose another port"
        ),
        Error::PortTakenBySite { port, .. } => {
            format!("`sitectl down {port}` first, or choose another port")
        }
        Error::RootMissing { .. } => {
            "check the path: a site root is a folder of Markdown files, or one with \
             `content/` in it"
                .into()
        }
        Error::RootNotDirectory { .. } => {
            "give the folder that holds the site, not a file in it (`sitectl up .` inside it)"
                .into()
        }
        Error::RootUnreadable { .. } => "check the folder's permissions".into(),
        Error::BadHost { .. } => {
            "give an address of this machine (e.g. 127.0.0.1, 0.0.0.0 for every interface) \
             or a name that resolves to one"
                .into()
        }
        Error::NoSuchSite { .. } => "`sitectl ps` lists the sites that are running".into(),
        Error::NoFreePort { .. } => {
            "`sitectl ps` lists the sites that are running; `sitectl down` frees ports".into()
        }
        Error::SiteAttached { .. } => {
            "stop that command (Ctrl+C) and run it again, or `sitectl rebuild` the site".into()
        }
        Error::ShuttingDown => {
            "try again once it has stopped; `sitectl up` starts a new one".into()
        }
        Error::UpWithOtherOptions { port, .. } => format!(
            "`sitectl down {port}`, then `sitectl up` with the new options; or leave them \
             off to use the site as it is"
        ),
        Error::Bind { port, .. } if *port < 1024 => format!(
            "ports below 1024 need privileges (root, or CAP_NET_BIND_SERVICE): choose one \
             from 1024 up, e.g. `--port {}`",
            u32::from(*port) + 8000
        ),
        Error::Bind { .. } => "choose another port with `--port`".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading the socket")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_follow_the_error_chain() {
        let error = Outer(std::io::Error::other("connection reset"));
        let failure = Failure::unreachable("lost the daemon").because_of(&error);
        assert_eq!(failure.causes, ["reading the socket", "connection reset"]);
        assert_eq!(failure.exit_code(), 3);
    }

    #[test]
    fn a_source_already_quoted_is_not_repeated() {
        let error = sited_proto::PathsError::CreateDir {
            path: "/run/x".into(),
            source: std::io::Error::other("read-only file system"),
        };
        let failure = Failure::unreachable("cannot use sited's directories").because_of(&error);
        assert_eq!(
            failure.causes,
            ["cannot create /run/x: read-only file system"]
        );
    }

    #[test]
    fn daemon_errors_get_a_hint_and_exit_1() {
        let failure = Failure::daemon(Error::RootMissing {
            path: "/nowhere".into(),
        });
        assert_eq!(failure.message, "site root /nowhere does not exist");
        assert!(failure.hint.is_some());
        assert_eq!(failure.exit_code(), 1);
        let failure = Failure::daemon(Error::Bind {
            port: 80,
            message: "Permission denied (os error 13)".into(),
        });
        assert_eq!(failure.message, "cannot listen on port 80");
        assert_eq!(failure.causes, ["Permission denied (os error 13)"]);
    }

    /// Issue 15.6: tests run as root here, where port 80 binds; so the refusal is shown
    /// from the daemon's error, as `up --port 80` gets it as a user.
    #[test]
    fn a_privileged_port_refusal_says_ports_below_1024_need_privileges() {
        let failure = Failure::daemon(Error::Bind {
            port: 80,
            message: "127.0.0.1: Permission denied (os error 13)".into(),
        });
        let hint = failure.hint.unwrap();
        assert!(hint.contains("ports below 1024 need privileges"), "{hint}");
        assert!(hint.contains("--port 8080"), "{hint}");
        let failure = Failure::daemon(Error::Bind {
            port: 8080,
            message: "127.0.0.1: Cannot assign requested address (os error 99)".into(),
        });
        assert!(!failure.hint.unwrap().contains("1024"));
    }
}
