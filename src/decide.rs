//! What happens to a deleted object: a pure function of what the object recorded before, what
//! the caches and the API said, and the time. No I/O; the reconciler carries the decision out.
//!
//! # The deletion invariant
//!
//! A `Delete` object loses its finalizer only after
//! (a) the drop endpoint confirmed the drop of that exact resource, or
//! (b) the API that holds the resource said, for that exact resource or for the cluster it
//!     lives in, that it does not exist — an explicit not-found, or a cluster that a describe
//!     shows `DELETED` — never inferred from another object's condition, from a missing
//!     Kubernetes object, or from an ambiguous code; or
//! (c) the user chose to keep it (`Orphan`).
//!
//! No resource that another live object names is dropped, and no resource is dropped a second
//! time after its drop was confirmed.
//!
//! How it holds by construction: [`decide`] releases the finalizer only for [`Gate::Orphan`],
//! [`Gate::NotManaged`] (the user keeps the resource: (c)),
//! [`Gate::KeptBy`] (another object keeps the resource: nothing is dropped), an invalid spec
//! (it never named a resource), [`Attempt::Dropped`] and [`Attempt::Absent`]. Only the kinds'
//! protocols (`kinds/`) make those two attempts, and an [`Attempt::Absent`] carries the
//! [`crate::kinds::Evidence`] the API gave; an ambiguous answer (80020, 1100) becomes one only
//! after a read of the resource confirms it, and unknown codes or a 404 without an envelope
//! never do. A missing referenced object is [`Unresolved::ReferenceNotFound`], which keeps the
//! finalizer. Gates that read the caches ([`Gate::KeptBy`], [`Gate::DependentsExist`]) are decided only once every
//! cache holds its first list. `decide::model_tests` checks the invariant after every step of
//! random sequences of answers and events in a small model of the world.

pub mod live;

use crate::{
    backoff::Backoff,
    crd::{DeletionPolicy, DeletionStatus, Reason},
    kinds::Attempt,
};
use std::time::Duration;

/// The retry settings a decision's delay is drawn from.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Failed drops.
    pub backoff: Backoff,
    /// Polls of an accepted asynchronous drop, and waits for other objects.
    pub poll: Backoff,
}

/// What the object recorded before this reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// `status.deletion`, or empty.
    pub deletion: DeletionStatus,
    /// The `Synced` condition's reason and message.
    pub synced: Option<(String, String)>,
    /// Polls of an accepted drop that learned nothing, counted in memory.
    pub polls: u32,
}

impl Recorded {
    fn accepted(&self) -> bool {
        self.deletion.drop_accepted_time.is_some()
    }

    fn synced_is(&self, reason: Reason) -> bool {
        self.synced
            .as_ref()
            .is_some_and(|(r, _)| r == reason.as_str())
    }
}

/// What is known of a deleted object before any call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateFacts {
    pub policy: DeletionPolicy,
    /// `managementPolicies` allow `Delete`.
    pub delete_allowed: bool,
    /// Annotated `zilliz.io/deletion-protection: "true"`.
    pub protected: bool,
    /// Every cache holds its first list (always true without caches).
    pub caches_synced: bool,
    /// Objects that live in this one's resource (`kind/name`), when the kind has any and no
    /// drop was accepted yet.
    pub dependents: Vec<String>,
    /// Why the spec is invalid, if it is.
    pub invalid_spec: Option<String>,
    /// Another object that names the same resource and keeps it (`namespace/name`).
    pub keeper: Option<String>,
}

/// A reason to stop before any call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// A cache has not listed yet: "nobody else names it" cannot be told.
    CachesSyncing,
    /// Objects in this one's resource are not gone yet; their drops need it.
    DependentsExist(Vec<String>),
    Orphan,
    /// `managementPolicies` do not include `Delete`: kept, like `Orphan`.
    NotManaged,
    Protected,
    /// The spec never named a resource.
    NothingToDrop(String),
    /// Another live (or older) object names the same resource.
    KeptBy(String),
}

/// The gates, in order. Dependents come before `Orphan`: a parent kept on purpose still waits
/// for the objects in it, whose drops need it. A drop happens only when both `deletionPolicy`
/// and `managementPolicies` allow it.
pub fn gate(f: &GateFacts) -> Option<Gate> {
    if !f.caches_synced {
        return Some(Gate::CachesSyncing);
    }
    if !f.dependents.is_empty() {
        return Some(Gate::DependentsExist(f.dependents.clone()));
    }
    if f.policy == DeletionPolicy::Orphan {
        return Some(Gate::Orphan);
    }
    if !f.delete_allowed {
        return Some(Gate::NotManaged);
    }
    if f.protected {
        return Some(Gate::Protected);
    }
    if let Some(why) = &f.invalid_spec {
        return Some(Gate::NothingToDrop(why.clone()));
    }
    f.keeper.clone().map(Gate::KeptBy)
}

/// Why the resource could not be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The Secret or its key is missing.
    Credentials(String),
    /// A referenced object is gone and nothing recorded says where the resource is.
    ReferenceNotFound(String),
    /// Anything else (a Kubernetes read failed, ...): retried.
    Other(String),
}

/// What this reconcile found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Gate(Gate),
    Unresolved(Unresolved),
    Attempt(Attempt),
}

/// An Event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: Reason,
    pub action: &'static str,
    pub message: String,
}

/// When to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Failed: capped exponential backoff with jitter, `Retry-After` as a floor.
    Backoff {
        attempt: u32,
        retry_after: Option<Duration>,
    },
    /// Waiting for something that takes its time (a cluster's drop, other objects).
    Poll { attempt: u32 },
    /// A terminal error: about the backoff cap (a change of the object or its Secret
    /// reconciles it at once).
    Slow,
}

impl Retry {
    pub fn delay(&self, pace: &Pace) -> Duration {
        match *self {
            Retry::Backoff {
                attempt,
                retry_after,
            } => pace.backoff.delay(attempt, retry_after),
            Retry::Poll { attempt } => pace.poll.delay(attempt, None),
            Retry::Slow => pace.backoff.slow(),
        }
    }
}

/// What to do with the in-memory poll count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polls {
    Leave,
    Count,
    Reset,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let the finalizer go.
    Release(Note),
    /// Keep it.
    Keep {
        reason: Reason,
        message: String,
        retry: Retry,
        /// The new `status.deletion` to write (its `nextRetryTime` filled in by the shell), or
        /// `None` to write nothing.
        deletion: Option<DeletionStatus>,
        note: Option<Note>,
        polls: Polls,
    },
}

impl Decision {
    pub fn releases(&self) -> bool {
        matches!(self, Decision::Release(_))
    }
}

fn note(warning: bool, reason: Reason, action: &'static str, message: String) -> Note {
    Note {
        warning,
        reason,
        action,
        message: message.chars().take(1000).collect(),
    }
}

/// How to let an object go on purpose when its resource cannot be dropped.
pub const ORPHAN_HINT: &str =
    "to keep the resource and let this object go, set spec.deletionPolicy: Orphan";

/// Decides what happens to a deleted object (see the module's invariant). `label` and `name`
/// say what the resource is (`collection`, `books`); `now` is an RFC 3339 time stamp.
pub fn decide(label: &str, name: &str, recorded: &Recorded, input: Input, now: &str) -> Decision {
    let prev = &recorded.deletion;
    let attempted = || {
        let mut d = prev.clone();
        d.attempts = d.attempts.saturating_add(1);
        d.last_attempt_time = Some(now.to_string());
        d
    };
    let keep = |reason, message: String, retry, deletion, note, polls| Decision::Keep {
        reason,
        message,
        retry,
        deletion,
        note,
        polls,
    };
    match input {
        Input::Gate(Gate::CachesSyncing) => keep(
            Reason::CachesSyncing,
            "waiting for the caches to list every object before deciding who else needs this resource".into(),
            Retry::Poll { attempt: 0 },
            None,
            None,
            Polls::Leave,
        ),
        Input::Gate(Gate::DependentsExist(objects)) => {
            let d = attempted();
            let shown: Vec<&str> = objects.iter().take(10).map(String::as_str).collect();
            let more = objects.len().saturating_sub(shown.len());
            let message = format!(
                "waiting for {} object(s) in this {label} to be deleted first: {}{}",
                objects.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            let retry = Retry::Poll {
                attempt: d.attempts.saturating_sub(1),
            };
            keep(
                Reason::DependentsExist,
                message,
                retry,
                Some(d),
                None,
                Polls::Leave,
            )
        }
        Input::Gate(Gate::Orphan) => Decision::Release(note(
            false,
            Reason::Orphaned,
            "Delete",
            format!("deletionPolicy is Orphan: {label} {name} was kept; no API call was made"),
        )),
        Input::Gate(Gate::NotManaged) => Decision::Release(note(
            false,
            Reason::Orphaned,
            "Delete",
            format!("managementPolicies do not include Delete: {label} {name} was kept; no API call was made"),
        )),
        Input::Gate(Gate::Protected) => {
            let message = format!(
                "annotated zilliz.io/deletion-protection: \"true\": {label} {name} is not dropped. Remove the annotation to drop it, or set spec.deletionPolicy: Orphan to keep it and let this object go"
            );
            let first = !recorded.synced_is(Reason::DeletionProtected);
            keep(
                Reason::DeletionProtected,
                message.clone(),
                Retry::Slow,
                first.then(|| prev.clone()),
                first.then(|| note(true, Reason::DeletionProtected, "Delete", message)),
                Polls::Leave,
            )
        }
        Input::Gate(Gate::NothingToDrop(why)) => Decision::Release(note(
            true,
            Reason::NothingToDrop,
            "Delete",
            format!("the spec is invalid ({why}); it never named a resource, so nothing was dropped"),
        )),
        Input::Gate(Gate::KeptBy(keeper)) => Decision::Release(note(
            false,
            Reason::KeptShared,
            "Delete",
            format!("{label} {name:?} was not dropped: {keeper} still names it"),
        )),
        Input::Unresolved(why) => {
            let mut d = attempted();
            let (reason, message, warn) = match why {
                Unresolved::Credentials(m) => (Reason::CredentialsUnavailable, m, false),
                Unresolved::ReferenceNotFound(m) => (
                    Reason::ReferenceNotFound,
                    format!("{m}, and this object recorded no address of its own, so the {label} cannot be dropped; recreate the referenced object, or {ORPHAN_HINT}"),
                    true,
                ),
                Unresolved::Other(m) => (Reason::DropRetrying, m, false),
            };
            let last: String = message.chars().take(1024).collect();
            let note = (warn && prev.last_error.as_deref() != Some(last.as_str())).then(|| {
                note(true, reason, "Drop", message.clone())
            });
            d.last_error = Some(last);
            keep(
                reason,
                format!("{message} (attempt {})", d.attempts),
                Retry::Backoff {
                    attempt: d.attempts.saturating_sub(1),
                    retry_after: None,
                },
                Some(d),
                note,
                Polls::Leave,
            )
        }
        Input::Attempt(Attempt::Dropped(m)) => {
            Decision::Release(note(false, Reason::Dropped, "Drop", m))
        }
        Input::Attempt(Attempt::Absent(_, m)) => {
            Decision::Release(note(false, Reason::AlreadyAbsent, "Drop", m))
        }
        Input::Attempt(Attempt::Accepted(m)) => {
            let mut d = prev.clone();
            d.attempts = 0;
            d.last_attempt_time = Some(now.to_string());
            d.drop_accepted_time = Some(now.to_string());
            d.last_error = None;
            keep(
                Reason::DropInProgress,
                m.clone(),
                Retry::Poll { attempt: 0 },
                Some(d),
                Some(note(false, Reason::DropAccepted, "Drop", m)),
                Polls::Reset,
            )
        }
        Input::Attempt(Attempt::InProgress(m)) if !recorded.accepted() => {
            // accepted earlier, and the mark was lost (or someone else dropped it): record it
            let mut d = prev.clone();
            d.attempts = 0;
            d.last_attempt_time = Some(now.to_string());
            d.drop_accepted_time = Some(now.to_string());
            d.last_error = None;
            keep(
                Reason::DropInProgress,
                m,
                Retry::Poll { attempt: 0 },
                Some(d),
                None,
                Polls::Reset,
            )
        }
        Input::Attempt(Attempt::InProgress(m)) => {
            // A poll that learns nothing new writes nothing, so a drop that takes many minutes
            // costs no more writes than one that takes seconds.
            let unchanged = prev.last_error.is_none()
                && recorded.synced.as_ref().is_some_and(|(r, message)| {
                    r == Reason::DropInProgress.as_str() && *message == m
                });
            let retry = Retry::Poll {
                attempt: recorded.polls,
            };
            let deletion = (!unchanged).then(|| {
                let mut d = attempted();
                d.last_error = None;
                d
            });
            keep(Reason::DropInProgress, m, retry, deletion, None, Polls::Count)
        }
        Input::Attempt(Attempt::Blocked(e)) => {
            let message = format!(
                "CollectionLoaded: {e}. The operator does not release a serving collection on its own; release it, or set spec.releaseCollectionBeforeDrop: true"
            );
            failed(prev, attempted(), Reason::DropBlocked, message, true, e.retry_after)
        }
        Input::Attempt(Attempt::Failed(e)) => {
            if e.class.is_retryable() {
                failed(prev, attempted(), Reason::DropRetrying, e.to_string(), false, e.retry_after)
            } else {
                let message = format!("{e}; {ORPHAN_HINT}");
                failed(prev, attempted(), Reason::DropFailed, message, true, None)
            }
        }
    }
}

/// A drop that did not finish: retried with backoff, or slowly when terminal; one Warning per
/// distinct error (`warn`), not one per retry.
fn failed(
    prev: &DeletionStatus,
    mut d: DeletionStatus,
    reason: Reason,
    error: String,
    warn: bool,
    retry_after: Option<Duration>,
) -> Decision {
    let last: String = error.chars().take(1024).collect();
    let message = format!("{error} (attempt {})", d.attempts);
    let retry = match reason {
        Reason::DropFailed => Retry::Slow,
        _ => Retry::Backoff {
            attempt: d.attempts.saturating_sub(1),
            retry_after,
        },
    };
    let event_reason = match reason {
        Reason::DropBlocked => Reason::CollectionLoaded,
        other => other,
    };
    let note = (warn && prev.last_error.as_deref() != Some(last.as_str()))
        .then(|| note(true, event_reason, "Drop", message.clone()));
    d.last_error = Some(last);
    Decision::Keep {
        reason,
        message,
        retry,
        deletion: Some(d),
        note,
        polls: Polls::Leave,
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
