use super::*;
use crate::api::{CollectionInfo, IndexInfo, IndexState};
use crate::kinds::Difference;

fn exists(facts: Facts) -> Observation {
    Ok(Observed::Exists {
        usable: true,
        detail: "collection default.books exists".into(),
        endpoint: None,
        cluster_state: None,
        facts,
    })
}

type Observation = crate::kinds::Observation;

fn seen(seen: Observation, created: bool, assessment: Assessment) -> Converged {
    Converged::Seen {
        seen,
        created,
        assessment,
    }
}

fn difference(field: &str) -> Difference {
    Difference {
        field: field.into(),
        declared: "2".into(),
        observed: "1".into(),
    }
}

fn collection() -> Facts {
    Facts::Collection(Box::new(CollectionInfo {
        description: None,
        auto_id: None,
        enable_dynamic_field: None,
        fields: vec![],
        indexed_fields: vec![],
        load: LoadState::Loaded,
        shards_num: Some(1),
        consistency_level: None,
        ttl_seconds: None,
    }))
}

#[test]
fn a_created_resource_is_ready_created_and_told_once() {
    let j = judge(
        &seen(exists(collection()), true, Assessment::default()),
        None,
        Some(Reason::NotFound),
    );
    assert!(j.ready);
    assert_eq!(j.origin, Some(Origin::Created));
    assert_eq!(j.note.map(|n| n.reason), Some(Reason::Created));
    assert_eq!(
        j.observed.and_then(|o| o.load_state).as_deref(),
        Some("Loaded")
    );
    // found there: adopted, no Event
    let j = judge(
        &seen(exists(collection()), false, Assessment::default()),
        None,
        Some(Reason::Available),
    );
    assert_eq!((j.origin, j.note), (Some(Origin::Adopted), None));
    assert_eq!(j.next, Next::Resync);
}

#[test]
fn a_mismatch_lists_each_difference_stalls_and_is_told_when_first_seen() {
    let mismatch = Assessment {
        differences: vec![
            difference("params.shardsNum"),
            difference("schema.fields[a].dim"),
        ],
        ..Assessment::default()
    };
    let c = seen(exists(collection()), false, mismatch);
    let j = judge(&c, None, Some(Reason::Available));
    assert!(!j.ready);
    assert_eq!(j.reason, Reason::SpecMismatch);
    assert!(Reason::SpecMismatch.stalls());
    assert!(
        j.message
            .contains("params.shardsNum: declared 2, observed 1")
            && j.message
                .contains("schema.fields[a].dim: declared 2, observed 1"),
        "{}",
        j.message
    );
    assert_eq!(
        j.note.as_ref().map(|n| (n.reason, n.warning)),
        Some((Reason::SpecMismatch, true))
    );
    // the same mismatch on the next look: no second Event
    assert_eq!(judge(&c, None, Some(Reason::SpecMismatch)).note, None);
}

#[test]
fn updates_are_told_and_looked_at_again_soon_and_a_failed_one_is_not_synced() {
    let updated = Assessment {
        updated: vec![difference("loadState")],
        ..Assessment::default()
    };
    let j = judge(&seen(exists(collection()), false, updated), None, None);
    assert!(j.ready);
    assert_eq!(j.note.map(|n| n.reason), Some(Reason::Updated));
    assert_eq!(j.next, Next::Soon);
    let failed = Assessment {
        failed: Some(ApiError::new(ErrorClass::Transient, "503")),
        ..Assessment::default()
    };
    let j = judge(&seen(exists(collection()), false, failed), None, None);
    assert_eq!((j.ready, j.failed), (false, Some(Reason::UpdateFailed)));
    assert_eq!(j.next, Next::Backoff(None));
}

#[test]
fn an_index_is_ready_only_when_built() {
    let index = |state: IndexState| {
        Facts::Index(Box::new(IndexInfo {
            field_name: "vector".into(),
            index_type: "HNSW".into(),
            metric_type: "COSINE".into(),
            state,
            indexed_rows: 3,
            total_rows: 10,
            fail_reason: "out of memory".into(),
        }))
    };
    let building = Assessment {
        pending: Some(Pending::Building {
            indexed_rows: 3,
            total_rows: 10,
        }),
        ..Assessment::default()
    };
    let j = judge(
        &seen(exists(index(IndexState::InProgress)), false, building),
        None,
        None,
    );
    assert_eq!((j.ready, j.reason), (false, Reason::IndexBuilding));
    assert!(j.message.contains("3 of 10"), "{}", j.message);
    assert_eq!(j.next, Next::Soon);
    let observed = j.observed.unwrap();
    assert_eq!(observed.index_type.as_deref(), Some("HNSW"));
    assert_eq!(observed.index_state.as_deref(), Some("InProgress"));
    let failed = Assessment {
        pending: Some(Pending::BuildFailed("out of memory".into())),
        ..Assessment::default()
    };
    let j = judge(
        &seen(exists(index(IndexState::Failed)), false, failed),
        None,
        None,
    );
    assert_eq!(j.reason, Reason::IndexBuildFailed);
    assert!(Reason::IndexBuildFailed.stalls());
}

#[test]
fn a_resource_gone_outside_kubernetes_is_told_once() {
    let absent = Converged::seen(Ok(Observed::Absent {
        detail: "collection default.books does not exist".into(),
    }));
    let j = judge(
        &absent,
        Some("managementPolicies do not include Create"),
        Some(Reason::Available),
    );
    assert_eq!((j.ready, j.reason), (false, Reason::NotFound));
    assert!(
        j.message.contains("not created: managementPolicies"),
        "{}",
        j.message
    );
    assert_eq!(j.note.map(|n| n.reason), Some(Reason::NotFound));
    // never found, or already told
    assert_eq!(judge(&absent, None, None).note, None);
    assert_eq!(judge(&absent, None, Some(Reason::NotFound)).note, None);
}

#[test]
fn a_refused_create_is_an_invalid_spec_without_a_retry_storm() {
    let refused = Converged::Refused(ApiError::new(
        ErrorClass::BadRequest,
        "field vector not found",
    ));
    let j = judge(&refused, None, None);
    assert_eq!(j.failed, Some(Reason::InvalidSpec));
    assert_eq!(j.next, Next::Slow);
    assert!(j.note.is_some());
    assert!(
        judge(&refused, None, Some(Reason::InvalidSpec))
            .note
            .is_none()
    );
}

#[test]
fn the_event_gate_lets_one_event_per_object_and_reason_through_a_quiet_period() {
    let mut gate = EventGate::default();
    let t0 = Instant::now();
    let quiet = Duration::from_secs(300);
    assert!(gate.allow("u1", Reason::NotFound, t0, quiet));
    assert!(!gate.allow("u1", Reason::NotFound, t0 + Duration::from_secs(10), quiet));
    assert!(gate.allow("u1", Reason::SpecMismatch, t0, quiet));
    assert!(gate.allow("u2", Reason::NotFound, t0, quiet));
    assert!(gate.allow("u1", Reason::NotFound, t0 + quiet, quiet));
    gate.forget("u1");
    assert!(gate.allow(
        "u1",
        Reason::SpecMismatch,
        t0 + Duration::from_secs(1),
        quiet
    ));
}
