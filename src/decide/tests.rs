//! The decision, case by case (the invariant over sequences is in `model_tests`).

use super::*;
use crate::api::{ApiError, ErrorClass};
use crate::kinds::Evidence;
use proptest::prelude::*;
use std::time::Duration;

const NOW: &str = "2026-01-01T00:00:00Z";

fn facts() -> GateFacts {
    GateFacts {
        policy: DeletionPolicy::Delete,
        delete_allowed: true,
        protected: false,
        caches_synced: true,
        dependents: Vec::new(),
        invalid_spec: None,
        keeper: None,
    }
}

fn err(class: ErrorClass, message: &str) -> ApiError {
    ApiError::new(class, message)
}

fn run(recorded: &Recorded, input: Input) -> Decision {
    decide("collection", "books", recorded, input, NOW)
}

fn keep_parts(
    d: Decision,
) -> (
    Reason,
    String,
    Retry,
    Option<DeletionStatus>,
    Option<Note>,
    Polls,
) {
    match d {
        Decision::Keep {
            reason,
            message,
            retry,
            deletion,
            note,
            polls,
        } => (reason, message, retry, deletion, note, polls),
        other => panic!("expected Keep, got {other:?}"),
    }
}

#[test]
fn gates_come_in_order() {
    let all = GateFacts {
        policy: DeletionPolicy::Orphan,
        delete_allowed: false,
        protected: true,
        caches_synced: false,
        dependents: vec!["ZillizCollection/a".into()],
        invalid_spec: Some("bad".into()),
        keeper: Some("ns/other".into()),
    };
    let mut f = all.clone();
    assert_eq!(gate(&f), Some(Gate::CachesSyncing));
    f.caches_synced = true;
    assert_eq!(
        gate(&f),
        Some(Gate::DependentsExist(vec!["ZillizCollection/a".into()])),
        "a parent kept on purpose still waits for what lives in it"
    );
    f.dependents.clear();
    assert_eq!(gate(&f), Some(Gate::Orphan));
    f.policy = DeletionPolicy::Delete;
    assert_eq!(
        gate(&f),
        Some(Gate::NotManaged),
        "managementPolicies without Delete"
    );
    f.delete_allowed = true;
    assert_eq!(gate(&f), Some(Gate::Protected));
    f.protected = false;
    assert_eq!(gate(&f), Some(Gate::NothingToDrop("bad".into())));
    f.invalid_spec = None;
    assert_eq!(gate(&f), Some(Gate::KeptBy("ns/other".into())));
    f.keeper = None;
    assert_eq!(gate(&f), None);
    assert_eq!(gate(&facts()), None);
}

#[test]
fn only_orphan_sharing_invalid_specs_and_the_api_release() {
    let r = Recorded::default();
    let releases = [
        Input::Gate(Gate::Orphan),
        Input::Gate(Gate::NotManaged),
        Input::Gate(Gate::KeptBy("ns/x".into())),
        Input::Gate(Gate::NothingToDrop("bad".into())),
        Input::Attempt(Attempt::Dropped("dropped".into())),
        Input::Attempt(Attempt::Absent(
            Evidence::NotFound { code: Some(100) },
            "gone".into(),
        )),
    ];
    for input in releases {
        assert!(run(&r, input.clone()).releases(), "{input:?}");
    }
    let keeps = [
        Input::Gate(Gate::CachesSyncing),
        Input::Gate(Gate::DependentsExist(vec!["a".into()])),
        Input::Gate(Gate::Protected),
        Input::Unresolved(Unresolved::Credentials("no Secret".into())),
        Input::Unresolved(Unresolved::ReferenceNotFound("no parent".into())),
        Input::Unresolved(Unresolved::Other("read failed".into())),
        Input::Attempt(Attempt::Accepted("accepted".into())),
        Input::Attempt(Attempt::InProgress("deleting".into())),
        Input::Attempt(Attempt::Blocked(err(ErrorClass::NeedsRelease, "loaded"))),
        Input::Attempt(Attempt::Failed(err(ErrorClass::Transient, "503"))),
        Input::Attempt(Attempt::Failed(err(ErrorClass::InvalidName, "1100"))),
        Input::Attempt(Attempt::Failed(err(
            ErrorClass::NotFoundOrForbidden,
            "80020",
        ))),
    ];
    for input in keeps {
        assert!(!run(&r, input.clone()).releases(), "{input:?}");
    }
}

#[test]
fn release_events_say_what_happened() {
    let r = Recorded::default();
    let reason = |input| match run(&r, input) {
        Decision::Release(n) => (n.reason, n.warning),
        other => panic!("{other:?}"),
    };
    assert_eq!(reason(Input::Gate(Gate::Orphan)), (Reason::Orphaned, false));
    assert_eq!(
        reason(Input::Gate(Gate::KeptBy("x".into()))),
        (Reason::KeptShared, false)
    );
    assert_eq!(
        reason(Input::Gate(Gate::NothingToDrop("x".into()))),
        (Reason::NothingToDrop, true)
    );
    assert_eq!(
        reason(Input::Attempt(Attempt::Dropped("x".into()))),
        (Reason::Dropped, false)
    );
    assert_eq!(
        reason(Input::Attempt(Attempt::Absent(
            Evidence::ClusterDeleted,
            "x".into()
        ))),
        (Reason::AlreadyAbsent, false)
    );
}

#[test]
fn an_accepted_drop_is_marked_and_polled() {
    let (reason, _, retry, deletion, note, polls) = keep_parts(run(
        &Recorded::default(),
        Input::Attempt(Attempt::Accepted("ok".into())),
    ));
    assert_eq!(reason, Reason::DropInProgress);
    assert_eq!(retry, Retry::Poll { attempt: 0 });
    let d = deletion.expect("written");
    assert_eq!(d.drop_accepted_time.as_deref(), Some(NOW));
    assert_eq!(d.attempts, 0);
    assert_eq!(note.expect("an Event").reason, Reason::DropAccepted);
    assert_eq!(polls, Polls::Reset);
}

#[test]
fn a_drop_found_in_progress_without_its_mark_is_marked() {
    // the status write after the accepted drop was lost: record the mark now
    let r = Recorded::default();
    let (reason, _, _, deletion, _, _) = keep_parts(run(
        &r,
        Input::Attempt(Attempt::InProgress("DELETING".into())),
    ));
    assert_eq!(reason, Reason::DropInProgress);
    assert!(deletion.expect("written").drop_accepted_time.is_some());
}

#[test]
fn a_poll_that_learns_nothing_writes_nothing_and_slows_down() {
    let r = Recorded {
        deletion: DeletionStatus {
            drop_accepted_time: Some(NOW.into()),
            ..Default::default()
        },
        synced: Some(("DropInProgress".into(), "DELETING".into())),
        polls: 3,
    };
    let (_, _, retry, deletion, note, polls) = keep_parts(run(
        &r,
        Input::Attempt(Attempt::InProgress("DELETING".into())),
    ));
    assert_eq!(deletion, None);
    assert_eq!(note, None);
    assert_eq!(retry, Retry::Poll { attempt: 3 });
    assert_eq!(polls, Polls::Count);
    // something new is written
    let (_, _, _, deletion, _, _) = keep_parts(run(
        &r,
        Input::Attempt(Attempt::InProgress("RUNNING".into())),
    ));
    assert!(deletion.is_some());
}

#[test]
fn a_transient_failure_backs_off_honouring_retry_after_without_an_event() {
    let e = ApiError {
        retry_after: Some(Duration::from_secs(7)),
        ..err(ErrorClass::Transient, "503")
    };
    let r = Recorded {
        deletion: DeletionStatus {
            attempts: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let (reason, message, retry, deletion, note, _) =
        keep_parts(run(&r, Input::Attempt(Attempt::Failed(e))));
    assert_eq!(reason, Reason::DropRetrying);
    assert!(message.ends_with("(attempt 3)"), "{message}");
    assert_eq!(
        retry,
        Retry::Backoff {
            attempt: 2,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let d = deletion.expect("written");
    assert_eq!((d.attempts, d.last_attempt_time.as_deref()), (3, Some(NOW)));
    assert_eq!(note, None);
}

#[test]
fn a_terminal_failure_warns_once_per_distinct_error_and_says_how_to_let_go() {
    let e = err(ErrorClass::InvalidName, "invalid parameter");
    let (reason, message, retry, deletion, note, _) = keep_parts(run(
        &Recorded::default(),
        Input::Attempt(Attempt::Failed(e.clone())),
    ));
    assert_eq!(reason, Reason::DropFailed);
    assert_eq!(retry, Retry::Slow);
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    assert_eq!(note.expect("a Warning").reason, Reason::DropFailed);
    // the same error again: no second Warning
    let again = Recorded {
        deletion: deletion.expect("written"),
        ..Default::default()
    };
    let (_, _, _, _, note, _) = keep_parts(run(&again, Input::Attempt(Attempt::Failed(e))));
    assert_eq!(note, None);
}

#[test]
fn a_loaded_collection_blocks_with_one_warning() {
    let e = err(
        ErrorClass::NeedsRelease,
        "collection is loaded, please release it first",
    );
    let (reason, message, retry, _, note, _) = keep_parts(run(
        &Recorded::default(),
        Input::Attempt(Attempt::Blocked(e)),
    ));
    assert_eq!(reason, Reason::DropBlocked);
    assert!(message.contains("releaseCollectionBeforeDrop"), "{message}");
    assert!(matches!(retry, Retry::Backoff { attempt: 0, .. }));
    assert_eq!(note.expect("a Warning").reason, Reason::CollectionLoaded);
}

#[test]
fn a_missing_reference_keeps_the_finalizer_and_says_how_to_let_go() {
    let input = Input::Unresolved(Unresolved::ReferenceNotFound(
        "ZillizCluster \"a\" does not exist in this namespace".into(),
    ));
    let (reason, message, _, deletion, note, _) = keep_parts(run(&Recorded::default(), input));
    assert_eq!(reason, Reason::ReferenceNotFound);
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    assert!(deletion.is_some());
    assert!(note.expect("a Warning").warning);
}

#[test]
fn protection_keeps_with_one_warning() {
    let (reason, message, retry, deletion, note, _) =
        keep_parts(run(&Recorded::default(), Input::Gate(Gate::Protected)));
    assert_eq!(reason, Reason::DeletionProtected);
    assert!(message.contains("Remove the annotation"), "{message}");
    assert_eq!(retry, Retry::Slow);
    assert!(deletion.is_some());
    assert_eq!(note.expect("a Warning").reason, Reason::DeletionProtected);
    let again = Recorded {
        synced: Some(("DeletionProtected".into(), message)),
        ..Default::default()
    };
    let (_, _, _, deletion, note, _) = keep_parts(run(&again, Input::Gate(Gate::Protected)));
    assert_eq!((deletion, note), (None, None), "nothing new to say");
}

#[test]
fn waiting_for_caches_writes_nothing() {
    let (reason, _, retry, deletion, note, _) =
        keep_parts(run(&Recorded::default(), Input::Gate(Gate::CachesSyncing)));
    assert_eq!(reason, Reason::CachesSyncing);
    assert_eq!(retry, Retry::Poll { attempt: 0 });
    assert_eq!((deletion, note), (None, None));
}

#[test]
fn dependents_are_listed_up_to_ten() {
    let many: Vec<String> = (0..12).map(|i| format!("ZillizCollection/c{i}")).collect();
    let (reason, message, retry, _, _, _) = keep_parts(run(
        &Recorded::default(),
        Input::Gate(Gate::DependentsExist(many)),
    ));
    assert_eq!(reason, Reason::DependentsExist);
    assert!(message.contains("waiting for 12 object(s)"), "{message}");
    assert!(message.ends_with("and 2 more"), "{message}");
    assert_eq!(retry, Retry::Poll { attempt: 0 });
}

fn any_input() -> impl Strategy<Value = Input> {
    let class = prop_oneof![
        Just(ErrorClass::NotFoundOrForbidden),
        Just(ErrorClass::InvalidName),
        Just(ErrorClass::NeedsRelease),
        Just(ErrorClass::Transient),
        Just(ErrorClass::Credentials),
        Just(ErrorClass::Unsupported),
        Just(ErrorClass::BadRequest),
        Just(ErrorClass::Unknown),
    ];
    let error = (class, proptest::option::of(0u64..100_000)).prop_map(|(c, ms)| ApiError {
        retry_after: ms.map(Duration::from_millis),
        ..ApiError::new(c, "x")
    });
    prop_oneof![
        Just(Input::Gate(Gate::CachesSyncing)),
        Just(Input::Gate(Gate::DependentsExist(vec!["a".into()]))),
        Just(Input::Gate(Gate::Protected)),
        Just(Input::Unresolved(Unresolved::Credentials("x".into()))),
        Just(Input::Unresolved(Unresolved::ReferenceNotFound("x".into()))),
        Just(Input::Unresolved(Unresolved::Other("x".into()))),
        Just(Input::Attempt(Attempt::Accepted("x".into()))),
        Just(Input::Attempt(Attempt::InProgress("x".into()))),
        error
            .clone()
            .prop_map(|e| Input::Attempt(Attempt::Blocked(e))),
        error.prop_map(|e| Input::Attempt(Attempt::Failed(e))),
    ]
}

proptest! {
    /// Never a hot loop: whatever kept the finalizer, the next look is at least a tenth of the
    /// smaller base away, and the ceiling grows with the attempts up to the caps.
    #[test]
    fn every_kept_finalizer_waits(input in any_input(), attempts in 0u32..40, polls in 0u32..40) {
        let pace = Pace {
            backoff: Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(300) },
            poll: Backoff { base: Duration::from_secs(5), cap: Duration::from_secs(60) },
        };
        let r = Recorded {
            deletion: DeletionStatus { attempts, ..Default::default() },
            synced: None,
            polls,
        };
        let (_, _, retry, _, _, _) = keep_parts(run(&r, input));
        let delay = retry.delay(&pace);
        prop_assert!(delay >= Duration::from_millis(100), "{retry:?}: {delay:?}");
        prop_assert!(delay <= Duration::from_secs(3600), "{retry:?}: {delay:?}");
    }
}

#[test]
fn only_a_missing_reference_warns_of_an_unresolved_resource_and_once_per_message() {
    // a missing Secret or a failed read is retried quietly: the condition says it, no Warning
    for quiet in [
        Unresolved::Credentials("Secret \"key\" not found".into()),
        Unresolved::Other("reading ZillizCluster \"a\": timeout".into()),
    ] {
        let (_, message, retry, deletion, note, _) =
            keep_parts(run(&Recorded::default(), Input::Unresolved(quiet.clone())));
        assert_eq!(note, None, "{quiet:?}");
        assert!(message.ends_with("(attempt 1)"), "{message}");
        assert_eq!(
            retry,
            Retry::Backoff {
                attempt: 0,
                retry_after: None
            }
        );
        assert!(deletion.expect("written").last_error.is_some());
    }
    let missing = |m: &str| Input::Unresolved(Unresolved::ReferenceNotFound(m.into()));
    let (_, _, _, deletion, note, _) = keep_parts(run(&Recorded::default(), missing("no a")));
    assert!(note.expect("a Warning").warning);
    let again = Recorded {
        deletion: deletion.expect("written"),
        ..Default::default()
    };
    let (_, message, _, _, note, _) = keep_parts(run(&again, missing("no a")));
    assert_eq!(note, None, "the same message again: no second Warning");
    assert!(message.ends_with("(attempt 2)"), "{message}");
    let (_, _, _, _, note, _) = keep_parts(run(&again, missing("no b")));
    assert!(note.is_some(), "another message: a Warning");
}
