//! A site's lifecycle as an enum with data. Transitions are methods that refuse illegal
//! moves, so a bug shows up as an error in the log instead of a site that claims to be
//! serving after it stopped.
//!
//! ```text
//! Starting → Building → Serving ⇄ Rebuilding
//!     any live state → Stopping → Stopped
//!     any live state → Failed → Stopping → Stopped
//! ```

use sited_proto::{BuildReport, SiteState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// Registered with its port bound; the first build has not begun.
    Starting,
    /// The first build runs; nothing is served yet.
    Building,
    /// Serving the published build.
    Serving { last_build: BuildReport },
    /// Serving the published build while a new one runs.
    Rebuilding { last_build: BuildReport },
    /// Cancelled: the listener is closing and connections drain.
    Stopping { last_build: Option<BuildReport> },
    /// Nothing is held any more. Final.
    Stopped { last_build: Option<BuildReport> },
    /// Cannot go on serving; waits to be taken down.
    Failed {
        reason: String,
        last_build: Option<BuildReport>,
    },
}

/// A move the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal site transition: {action} while {from}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub action: &'static str,
}

impl Lifecycle {
    pub fn name(&self) -> &'static str {
        self.to_wire().name()
    }

    /// The most recent finished build, if any.
    pub fn last_build(&self) -> Option<&BuildReport> {
        match self {
            Lifecycle::Starting | Lifecycle::Building => None,
            Lifecycle::Serving { last_build } | Lifecycle::Rebuilding { last_build } => {
                Some(last_build)
            }
            Lifecycle::Stopping { last_build }
            | Lifecycle::Stopped { last_build }
            | Lifecycle::Failed { last_build, .. } => last_build.as_ref(),
        }
    }

    /// True once the site will never serve again without a new `up`.
    pub fn is_settled(&self) -> bool {
        !matches!(self, Lifecycle::Starting | Lifecycle::Building)
    }

    pub fn is_stopped(&self) -> bool {
        matches!(self, Lifecycle::Stopped { .. })
    }

    fn illegal(&self, action: &'static str) -> IllegalTransition {
        IllegalTransition {
            from: self.name(),
            action,
        }
    }

    /// Starting → Building, Serving → Rebuilding.
    pub fn begin_build(&mut self) -> Result<(), IllegalTransition> {
        *self = match self {
            Lifecycle::Starting => Lifecycle::Building,
            Lifecycle::Serving { last_build } => Lifecycle::Rebuilding {
                last_build: last_build.clone(),
            },
            _ => return Err(self.illegal("begin build")),
        };
        Ok(())
    }

    /// Building/Rebuilding → Serving with the new report.
    pub fn finish_build(&mut self, report: BuildReport) -> Result<(), IllegalTransition> {
        match self {
            Lifecycle::Building | Lifecycle::Rebuilding { .. } => {
                *self = Lifecycle::Serving { last_build: report };
                Ok(())
            }
            _ => Err(self.illegal("finish build")),
        }
    }

    /// Any live state → Failed.
    pub fn fail(&mut self, reason: String) -> Result<(), IllegalTransition> {
        match self {
            Lifecycle::Stopping { .. } | Lifecycle::Stopped { .. } => Err(self.illegal("fail")),
            _ => {
                let last_build = self.last_build().cloned();
                *self = Lifecycle::Failed { reason, last_build };
                Ok(())
            }
        }
    }

    /// Any state but Stopping/Stopped → Stopping.
    pub fn stop(&mut self) -> Result<(), IllegalTransition> {
        match self {
            Lifecycle::Stopping { .. } | Lifecycle::Stopped { .. } => Err(self.illegal("stop")),
            _ => {
                *self = Lifecycle::Stopping {
                    last_build: self.last_build().cloned(),
                };
                Ok(())
            }
        }
    }

    /// Stopping → Stopped.
    pub fn stopped(&mut self) -> Result<(), IllegalTransition> {
        match self {
            Lifecycle::Stopping { last_build } => {
                *self = Lifecycle::Stopped {
                    last_build: last_build.take(),
                };
                Ok(())
            }
            _ => Err(self.illegal("finish stopping")),
        }
    }

    /// The state as the client sees it.
    pub fn to_wire(&self) -> SiteState {
        match self {
            Lifecycle::Starting => SiteState::Starting,
            Lifecycle::Building => SiteState::Building,
            Lifecycle::Serving { .. } => SiteState::Serving,
            Lifecycle::Rebuilding { .. } => SiteState::Rebuilding,
            Lifecycle::Stopping { .. } => SiteState::Stopping,
            Lifecycle::Stopped { .. } => SiteState::Stopped,
            Lifecycle::Failed { reason, .. } => SiteState::Failed {
                reason: reason.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pages: usize) -> BuildReport {
        BuildReport {
            pages,
            files: 0,
            rendered: pages,
            duration_ms: 1,
            finished_at_ms: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn happy_path() {
        let mut state = Lifecycle::Starting;
        state.begin_build().unwrap();
        assert_eq!(state, Lifecycle::Building);
        state.finish_build(report(3)).unwrap();
        assert_eq!(state.last_build().unwrap().pages, 3);
        state.begin_build().unwrap();
        assert!(matches!(state, Lifecycle::Rebuilding { .. }));
        assert_eq!(
            state.last_build().unwrap().pages,
            3,
            "rebuild keeps serving the last build"
        );
        state.finish_build(report(4)).unwrap();
        state.stop().unwrap();
        state.stopped().unwrap();
        assert!(state.is_stopped());
        assert_eq!(state.last_build().unwrap().pages, 4);
    }

    #[test]
    fn illegal_moves_are_refused() {
        let mut state = Lifecycle::Starting;
        assert!(state.finish_build(report(1)).is_err());
        assert!(state.stopped().is_err());
        state.stop().unwrap();
        assert!(state.begin_build().is_err());
        assert!(state.fail("x".into()).is_err());
        assert!(state.stop().is_err());
        state.stopped().unwrap();
        let error = state.begin_build().unwrap_err();
        assert_eq!(
            error.to_string(),
            "illegal site transition: begin build while stopped"
        );
    }

    #[test]
    fn failure_keeps_the_last_build_and_can_stop() {
        let mut state = Lifecycle::Serving {
            last_build: report(2),
        };
        state.fail("root deleted".into()).unwrap();
        assert_eq!(
            state.to_wire(),
            SiteState::Failed {
                reason: "root deleted".into()
            }
        );
        assert_eq!(state.last_build().unwrap().pages, 2);
        state.stop().unwrap();
        state.stopped().unwrap();
    }
}
