//! What a live object's status says after a converge run, and when to look again. Pure: the
//! shell (`controller::apply`) writes what [`judge`] returns.
//!
//! Drift is reported, never "fixed" by dropping and recreating: a difference in what cannot
//! change in place is `Ready=False`/`SpecMismatch` (kstatus `Stalled`) with each difference
//! listed, and an Event when it is first seen.

use super::Note;
use crate::{
    api::{ApiError, ErrorClass, LoadState},
    crd::{ObservedState, Origin, Reason},
    kinds::{Assessment, ClusterState, Converged, Facts, Observed, Pending},
};
use std::time::{Duration, Instant};

/// When to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// In step: at the resync interval.
    Resync,
    /// Work under way on the server (a build, a load, a cluster starting): soon.
    Soon,
    /// A failure that may pass: backoff (with the server's `Retry-After` as a floor).
    Backoff(Option<Duration>),
    /// A failure that needs someone to act: slowly.
    Slow,
    /// Nothing changes until the object does (an invalid spec).
    AwaitChange,
}

/// What the status and Events say.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// `Ready`: found usable and as declared.
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// `Synced=False` with this reason and message: the reconcile could not do its work.
    pub failed: Option<Reason>,
    pub next: Next,
    /// An Event, when something worth telling happened or was first seen.
    pub note: Option<Note>,
    /// `Created` when this run created the resource; `Adopted` when found there.
    pub origin: Option<Origin>,
    /// What a describe showed (collections and indexes).
    pub observed: Option<ObservedState>,
    /// Clusters: endpoint and state.
    pub cluster: Option<(Option<String>, ClusterState)>,
    /// Clusters: `cuSize` and `replica`, as described.
    pub sizes: Option<(Option<u32>, Option<u32>)>,
    /// The resource does not exist (a cluster shows `DELETED`).
    pub absent: bool,
}

impl Judgement {
    fn new(ready: bool, reason: Reason, message: String, next: Next) -> Self {
        Judgement {
            ready,
            reason,
            message,
            failed: None,
            next,
            note: None,
            origin: None,
            observed: None,
            cluster: None,
            sizes: None,
            absent: false,
        }
    }
}

/// The reason an observation that failed is shown with.
pub fn observe_reason(e: &ApiError) -> Reason {
    match e.class {
        ErrorClass::Credentials => Reason::Unauthorized,
        ErrorClass::Unsupported => Reason::Unsupported,
        ErrorClass::BadRequest | ErrorClass::InvalidName => Reason::InvalidRequest,
        _ => Reason::Unreachable,
    }
}

fn failure(e: &ApiError) -> Judgement {
    let reason = observe_reason(e);
    let next = if e.class.is_retryable() {
        Next::Backoff(e.retry_after)
    } else {
        Next::Slow
    };
    let mut j = Judgement::new(false, reason, e.to_string(), next);
    j.failed = Some(reason);
    j
}

fn note(warning: bool, reason: Reason, action: &'static str, message: &str) -> Option<Note> {
    Some(Note {
        warning,
        reason,
        action,
        message: message.to_string(),
    })
}

/// The status a describe shows.
pub fn observed_state(facts: &Facts) -> Option<ObservedState> {
    match facts {
        Facts::None | Facts::Cluster(_) => None,
        Facts::Collection(c) => Some(ObservedState {
            load_state: Some(match &c.load {
                LoadState::Other(s) if s.is_empty() => "Unknown".to_string(),
                other => other.as_str().to_string(),
            }),
            fields: c
                .fields
                .iter()
                .map(|f| {
                    let params: Vec<String> = [("dim", f.dim), ("maxLength", f.max_length)]
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                        .collect();
                    let mut shown = format!("{}: {}", f.name, f.data_type);
                    if !params.is_empty() {
                        shown.push_str(&format!("({})", params.join(",")));
                    }
                    if f.primary {
                        shown.push_str(" primary");
                    }
                    if f.partition_key {
                        shown.push_str(" partitionKey");
                    }
                    shown
                })
                .collect(),
            shards_num: c.shards_num,
            ttl_seconds: Some(c.ttl_seconds.unwrap_or(0)),
            consistency_level: c.consistency_level.clone(),
            ..ObservedState::default()
        }),
        Facts::Index(i) => Some(ObservedState {
            field_name: Some(i.field_name.clone()).filter(|s| !s.is_empty()),
            index_type: Some(i.index_type.clone()).filter(|s| !s.is_empty()),
            metric_type: Some(i.metric_type.clone()).filter(|s| !s.is_empty()),
            index_state: Some(i.state.as_str().to_string()).filter(|s| !s.is_empty()),
            indexed_rows: Some(i.indexed_rows),
            total_rows: Some(i.total_rows),
            ..ObservedState::default()
        }),
    }
}

/// What a converge run means for the status. `was` is the `Ready` reason before this run:
/// Events from observation are told once, when their state is first seen.
/// `no_create` says why an absent resource was not created.
pub fn judge(converged: &Converged, no_create: Option<&str>, was: Option<Reason>) -> Judgement {
    let (seen, created, assessment) = match converged {
        Converged::Waiting { database, message } => {
            let reason = if *database {
                Reason::DatabaseNotFound
            } else {
                Reason::ParentNotReady
            };
            let mut j = Judgement::new(false, reason, message.clone(), Next::Backoff(None));
            j.failed = Some(reason);
            return j;
        }
        Converged::Refused(e) => {
            let mut j = Judgement::new(false, Reason::InvalidSpec, e.to_string(), Next::Slow);
            j.failed = Some(Reason::InvalidSpec);
            if was != Some(Reason::InvalidSpec) {
                j.note = note(true, Reason::InvalidSpec, "Create", &j.message);
            }
            return j;
        }
        Converged::Seen {
            seen,
            created,
            assessment,
        } => (seen, *created, assessment),
    };
    let mut j = match seen {
        Err(e) => return failure(e),
        Ok(Observed::Absent { detail }) => {
            let message = match no_create {
                Some(why) => format!("{detail}; it is not created: {why}"),
                None => detail.clone(),
            };
            let mut j = Judgement::new(false, Reason::NotFound, message, Next::Resync);
            j.absent = true;
            // found before, gone now: removed outside Kubernetes
            if was.is_some_and(existed) {
                j.note = note(true, Reason::NotFound, "Observe", &j.message);
            }
            return j;
        }
        Ok(Observed::Exists {
            usable,
            detail,
            endpoint,
            cluster_state,
            facts,
        }) => {
            let mut j = if *usable {
                Judgement::new(true, Reason::Available, detail.clone(), Next::Resync)
            } else {
                Judgement::new(false, Reason::ClusterNotRunning, detail.clone(), Next::Soon)
            };
            j.cluster = cluster_state.clone().map(|s| (endpoint.clone(), s));
            j.observed = observed_state(facts);
            if let Facts::Cluster(info) = facts {
                j.sizes = Some((info.cu_size, info.replica));
            }
            j.origin = Some(if created {
                Origin::Created
            } else {
                Origin::Adopted
            });
            if created {
                j.note = note(
                    false,
                    Reason::Created,
                    "Create",
                    &format!("{detail}: created"),
                );
            }
            j
        }
    };
    if j.ready {
        apply_assessment(&mut j, assessment, was);
    }
    j
}

/// A `Ready` reason that says the resource was there.
fn existed(r: Reason) -> bool {
    use Reason::*;
    matches!(
        r,
        Available
            | ClusterNotRunning
            | SpecMismatch
            | IndexMissing
            | Loading
            | IndexBuilding
            | IndexBuildFailed
            | UpdateFailed
    )
}

fn apply_assessment(j: &mut Judgement, a: &Assessment, was: Option<Reason>) {
    let list = |ds: &[crate::kinds::Difference]| {
        ds.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !a.updated.is_empty() {
        let message = format!("brought to the spec: {}", list(&a.updated));
        // a second Event beside Created would say the same thing twice
        if j.note.is_none() {
            j.note = note(false, Reason::Updated, "Update", &message);
        }
        j.message = format!("{}; {message}", j.message);
        // what an update started (a load) is seen on the next look
        j.next = Next::Soon;
    }
    if let Some(e) = &a.failed {
        j.ready = false;
        j.reason = Reason::UpdateFailed;
        j.message = e.to_string();
        j.failed = Some(Reason::UpdateFailed);
        j.next = if e.class.is_retryable() {
            Next::Backoff(e.retry_after)
        } else {
            Next::Slow
        };
        return;
    }
    if !a.differences.is_empty() {
        j.ready = false;
        j.reason = Reason::SpecMismatch;
        j.message = format!(
            "the resource differs from the spec, and the operator never drops and recreates it to match: {}. Change the spec to what is there, or create a new object under another name",
            list(&a.differences)
        );
        j.next = Next::Resync;
        if was != Some(Reason::SpecMismatch) {
            j.note = note(true, Reason::SpecMismatch, "Observe", &j.message);
        }
        return;
    }
    let (reason, message) = match &a.pending {
        None => return,
        Some(Pending::IndexMissing) => (
            Reason::IndexMissing,
            "loadState is Loaded, and the collection's vector fields have no index yet: it loads once its ZillizIndex objects have created them".to_string(),
        ),
        Some(Pending::Loading) => (Reason::Loading, "the collection is loading".to_string()),
        Some(Pending::Building {
            indexed_rows,
            total_rows,
        }) => (
            Reason::IndexBuilding,
            format!("the index is being built: {indexed_rows} of {total_rows} rows indexed"),
        ),
        Some(Pending::BuildFailed(why)) => {
            j.ready = false;
            j.reason = Reason::IndexBuildFailed;
            j.message = format!("the index build failed: {why}");
            j.next = Next::Slow;
            if was != Some(Reason::IndexBuildFailed) {
                j.note = note(true, Reason::IndexBuildFailed, "Observe", &j.message);
            }
            return;
        }
    };
    j.ready = false;
    j.reason = reason;
    j.message = message;
    j.next = Next::Soon;
}

/// At most one observation Event per object and reason within `quiet`, so that a flapping
/// resource does not flood the Event stream. The shell keeps one per process.
#[derive(Debug, Default)]
pub struct EventGate {
    last: std::collections::HashMap<(String, Reason), Instant>,
}

impl EventGate {
    /// Whether an Event with `reason` for object `uid` may be recorded at `now`; records it when
    /// it may.
    pub fn allow(&mut self, uid: &str, reason: Reason, now: Instant, quiet: Duration) -> bool {
        // forget what is long past, so the map stays as small as the objects that flap
        if self.last.len() > 4096 {
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < quiet);
        }
        match self.last.get(&(uid.to_string(), reason)) {
            Some(at) if now.saturating_duration_since(*at) < quiet => false,
            _ => {
                self.last.insert((uid.to_string(), reason), now);
                true
            }
        }
    }

    /// Forgets an object (deleted).
    pub fn forget(&mut self, uid: &str) {
        self.last.retain(|(u, _), _| u != uid);
    }
}

#[cfg(test)]
mod tests;
