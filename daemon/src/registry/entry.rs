//! What the registry holds for a port, and an attached site's tie to its client.

use std::sync::{Arc, Weak};

use sited_proto::SiteInfo;

use super::Registry;
use crate::site::{SiteConfig, SiteHandle};

/// What the registry holds for a port: a site that runs, or one that could not start.
/// A failed site holds no listener, task or watch, and cannot be given one: to serve
/// again it is replaced by a fresh live site.
#[derive(Debug, Clone)]
pub enum Entry {
    Live(Arc<SiteHandle>),
    Failed(Arc<FailedSite>),
}

/// A site that could not start (its remembered root is gone, its port was taken): listed
/// with the reason until it is taken down or brought up again.
#[derive(Debug)]
pub struct FailedSite {
    pub config: SiteConfig,
    pub reason: String,
}

impl Entry {
    pub fn config(&self) -> &SiteConfig {
        match self {
            Entry::Live(site) => &site.config,
            Entry::Failed(site) => &site.config,
        }
    }

    pub fn info(&self) -> SiteInfo {
        match self {
            Entry::Live(site) => site.info(),
            Entry::Failed(site) => crate::site::failed_info(&site.config, &site.reason),
        }
    }

    /// A site that cannot serve: one that never started, or a live one that failed
    /// since (its root was deleted). `up` of its root replaces it.
    pub fn is_failed(&self) -> bool {
        match self {
            Entry::Failed(_) => true,
            Entry::Live(site) => matches!(site.lifecycle(), crate::site::Lifecycle::Failed { .. }),
        }
    }

    /// Whether this is the very entry `other` is (not merely one for the same port).
    pub(super) fn same(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Live(a), Entry::Live(b)) => Arc::ptr_eq(a, b),
            (Entry::Failed(a), Entry::Failed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// A live site on its way down: it still holds its port and root until it is gone.
    pub(super) fn stopping(&self) -> Option<&Arc<SiteHandle>> {
        match self {
            Entry::Live(site) if site.is_stopping() => Some(site),
            _ => None,
        }
    }

    pub(super) async fn stop(&self) -> SiteInfo {
        match self {
            Entry::Live(site) => site.stop().await,
            Entry::Failed(_) => {
                let mut info = self.info();
                info.state = sited_proto::SiteState::Stopped;
                info
            }
        }
    }
}

/// An attached site's tie to the client connection that brought it up: dropping it (the
/// connection closed) takes the site down. Only [`Registry::start`] makes one, for the
/// site it just created.
#[derive(Debug)]
pub struct Attachment {
    pub(super) registry: Weak<Registry>,
    pub(super) site: Arc<SiteHandle>,
}

impl Attachment {
    pub fn port(&self) -> u16 {
        self.site.config.port
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The site lets go of its port at once; the registry forgets it once it is gone.
        self.site.begin_stop();
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let site = self.site.clone();
        let tracker = registry.config.tracker.clone();
        tracker.spawn_on(
            async move {
                if registry.detach(&site).await {
                    tracing::info!(port = site.config.port, root = %site.config.root.display(), "client went away: attached site stopped");
                }
            },
            &runtime,
        );
    }
}
