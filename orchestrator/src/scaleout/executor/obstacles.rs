//! When a Job's pods that cannot run (cannot be created, scheduled, or have their
//! volumes attached: [`connectors::kube::workers::blocked_job`]) have waited long
//! enough to be an error. Both the scale-out workers and the volume movers follow Jobs
//! this way.
//!
//! Each obstacle must persist for a grace before it is an error (the cluster autoscaler
//! may add a node, a quota may be raised): [`stuck_grace`] for all but attach and mount
//! errors, which get three times that. Those are often transient: a `ReadWriteOnce`
//! volume is detached from its previous node only once the pod there is gone, the
//! attach/detach controller force-detaches an unmounted volume only after 6 minutes
//! (`maxWaitForUnmountDuration`), and CSI drivers retry with back-off. Three times the
//! stuck grace (15 min by default) outlasts those and stays under the one env override
//! tests and impatient operators set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connectors::kube::workers::{BlockKind, Blocked};

use super::kubernetes::stuck_grace;

/// How long an obstacle of `kind` may last before it is an error.
pub(crate) fn grace(kind: BlockKind) -> Duration {
    match kind {
        BlockKind::Mount => stuck_grace() * 3,
        _ => stuck_grace(),
    }
}

/// The obstacles seen so far, each since it was first seen, and when to look again.
#[derive(Debug, Default)]
pub(crate) struct Obstacles {
    since: BTreeMap<BlockKind, Instant>,
    next: Option<Instant>,
}

impl Obstacles {
    /// Whether the pods and events are due to be read again: often enough to fail
    /// close to the grace, rarely enough not to load the API server with many Jobs.
    pub(crate) fn due(&mut self, poll: Duration) -> bool {
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + (stuck_grace() / 4).clamp(poll, Duration::from_secs(10)));
        true
    }

    /// Take what the pods and events say now; the first obstacle that has lasted its
    /// grace, with when it began. An obstacle no longer seen starts over.
    pub(crate) fn outlasting<'a>(
        &mut self,
        blocked: &'a [Blocked],
    ) -> Option<(&'a Blocked, Instant)> {
        self.since
            .retain(|kind, _| blocked.iter().any(|b| b.kind == *kind));
        for b in blocked {
            let since = *self.since.entry(b.kind).or_insert_with(Instant::now);
            if since.elapsed() >= grace(b.kind) {
                return Some((b, since));
            }
        }
        None
    }
}
