//! The deletion invariant (see [`crate::decide`]), checked against a model of the world.
//!
//! A model of Kubernetes (two ZillizCluster objects that may name one Zilliz cluster, two
//! ZillizCollection objects that may name one collection in it), of the operator's caches and
//! memory, and of the external API (the cluster's state, an API key that may lose its rights on
//! the cluster, one-shot faults) is driven by random sequences of events: deletes, reconciles,
//! policy changes, faults, outside deletions, lost status writes, restarts. Every reconcile of
//! a deleted object runs the real decision core: [`gate`], the kinds' real drop protocols
//! (answered by the model API) and [`decide`]. After every step the invariant is checked:
//!
//! - a `Delete` object's finalizer goes as `Dropped`/`AlreadyAbsent` only when its resource no
//!   longer exists in the model world;
//! - no drop is sent for a resource that another live object names, or by an `Orphan` or
//!   protected object;
//! - no cluster drop is sent for a cluster whose drop was already accepted.
//!
//! Each of the five defects of issue 13, put back into the decision core, makes this test fail
//! (docs/development.md says how that was checked).

use super::*;
use crate::crd::{ZillizCluster, ZillizCollection};
use crate::{
    api::{ApiError, ClusterInfo, ErrorClass},
    kinds::{self, Attempt, Call, Container, Managed, Plan, Reply},
};
use proptest::prelude::*;

/// The model's objects: two cluster objects, two collection objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    C1,
    C2,
    X,
    Y,
}

const OBJS: [Obj; 4] = [Obj::C1, Obj::C2, Obj::X, Obj::Y];

impl Obj {
    fn is_cluster(self) -> bool {
        matches!(self, Obj::C1 | Obj::C2)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClusterLife {
    Running,
    Deleting,
    Deleted,
}

/// A one-shot fault: the next call answers this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// 503 from a gateway, a timeout, a reset.
    Transient,
    /// A code nobody knows.
    Unknown,
    /// Milvus 1100: "invalid parameter".
    InvalidParameter,
    /// An explicit 401.
    Unauthorized,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Delete(Obj),
    Reconcile(Obj),
    SetOrphan(Obj, bool),
    Protect(Obj, bool),
    ObserveOnly(Obj, bool),
    Fault(Fault),
    /// The API key loses (or regains) its rights on the cluster: 80020 for describe and drop,
    /// while the cluster list still shows it.
    Restrict(bool),
    /// Someone drops the cluster outside Kubernetes.
    DroppedOutside,
    /// A DELETING cluster becomes DELETED.
    FinishDeleting,
    /// The next status write of the operator is lost (a crash, a conflict).
    LoseNextWrite,
    /// Someone removes an object by hand (strips its finalizer): the operator decides nothing.
    RemovedByHand(Obj),
    /// The operator restarts: its memory is gone and its caches have not listed yet.
    Restart,
    /// The caches hold their first lists.
    Synced,
}

#[derive(Clone, Debug)]
struct Object {
    present: bool,
    deleted: bool,
    orphan: bool,
    protected: bool,
    /// `managementPolicies: ["Observe"]`: read-only.
    observe_only: bool,
    /// For collections: which cluster object it names.
    parent: Obj,
    /// What the object's status says.
    recorded: Recorded,
    /// Clusters: the last observation said the cluster is gone (`cluster_is_gone`).
    hint_gone: bool,
    /// Clusters: the status holds an endpoint.
    endpoint: bool,
    /// Collections: a resolved address was recorded.
    record: Option<bool>,
}

#[derive(Clone, Debug)]
struct World {
    cluster: ClusterLife,
    restricted: bool,
    collection: bool,
    fault: Option<Fault>,
    // Kubernetes and the operator
    objects: Vec<Object>,
    synced: bool,
    lose_write: bool,
    /// Does Y name the collection X names (else another one that does not exist)?
    y_shares: bool,
    /// Does C2 name the cluster C1 names (else a cluster that does not exist)?
    c2_shares: bool,
    /// What happened, kept only when `verbose` (the random runs print their minimal failing
    /// sequence instead, which proptest shrinks).
    trace: Vec<String>,
    verbose: bool,
}

fn initial(c1_orphan: bool, y_shares: bool, c2_shares: bool, y_parent: Obj) -> World {
    let object = |present: bool, orphan: bool, parent: Obj| Object {
        present,
        deleted: false,
        orphan,
        protected: false,
        observe_only: false,
        parent,
        recorded: Recorded::default(),
        hint_gone: false,
        endpoint: false,
        record: None,
    };
    World {
        cluster: ClusterLife::Running,
        restricted: false,
        collection: true,
        fault: None,
        objects: vec![
            object(true, c1_orphan, Obj::C1),
            object(true, false, Obj::C2),
            object(true, false, Obj::C1),
            object(true, false, y_parent),
        ],
        synced: true,
        lose_write: false,
        y_shares,
        c2_shares,
        trace: Vec::new(),
        verbose: false,
    }
}

fn fault_error(f: Fault) -> ApiError {
    match f {
        Fault::Transient => ApiError {
            http_status: Some(503),
            ..ApiError::new(ErrorClass::Transient, "503 Service Temporarily Unavailable")
        },
        Fault::Unknown => ApiError {
            code: Some(4242),
            ..ApiError::new(ErrorClass::Unknown, "something new")
        },
        Fault::InvalidParameter => ApiError {
            code: Some(1100),
            ..ApiError::new(ErrorClass::InvalidName, "invalid parameter[expected=...]")
        },
        Fault::Unauthorized => ApiError {
            http_status: Some(401),
            code: Some(1800),
            ..ApiError::new(ErrorClass::Credentials, "user hasn't authenticated")
        },
    }
}

fn code(class: ErrorClass, code: i64, message: &str) -> ApiError {
    ApiError {
        code: Some(code),
        ..ApiError::new(class, message)
    }
}

impl World {
    fn obj(&self, o: Obj) -> &Object {
        &self.objects[o as usize]
    }

    fn obj_mut(&mut self, o: Obj) -> &mut Object {
        &mut self.objects[o as usize]
    }

    /// Whether `o` names the real cluster (C2 may name another one).
    fn names_cluster(&self, o: Obj) -> bool {
        match o {
            Obj::C1 => true,
            Obj::C2 => self.c2_shares,
            _ => false,
        }
    }

    /// Whether `o` names the real collection (in the real cluster).
    fn names_collection(&self, o: Obj) -> bool {
        match o {
            Obj::X => true,
            Obj::Y => self.y_shares && self.names_cluster(self.obj(Obj::Y).parent),
            _ => false,
        }
    }

    /// Whether `o` names the same resource as `other`.
    fn same_resource(&self, o: Obj, other: Obj) -> bool {
        if o == other || o.is_cluster() != other.is_cluster() {
            return false;
        }
        if o.is_cluster() {
            self.names_cluster(o) && self.names_cluster(other)
        } else {
            self.names_collection(o) && self.names_collection(other)
        }
    }

    /// The model API answers one call made for object `o`.
    fn answer(&mut self, o: Obj, call: Call) -> Result<Reply, ApiError> {
        self.log(|| format!("  {o:?} calls {call:?}"));
        if let Some(f) = self.fault.take() {
            self.log(|| format!("    -> fault {f:?}"));
            return Err(fault_error(f));
        }
        let exists = self.names_cluster(if o.is_cluster() {
            o
        } else {
            self.obj(o).parent
        });
        let state = if exists { Some(self.cluster) } else { None };
        let not_exist = || {
            code(
                ErrorClass::NotFoundOrForbidden,
                80020,
                "Cluster not exist or you don't have permission.",
            )
        };
        let unreachable = || ApiError::new(ErrorClass::Transient, "connection refused");
        match call {
            Call::DescribeCluster => match state {
                _ if self.restricted => Err(not_exist()),
                None => Err(not_exist()),
                Some(life) => Ok(Reply::Cluster(ClusterInfo {
                    status: format!("{life:?}").to_ascii_uppercase(),
                    connect_address: Some("http://in01-k.example".into()),
                    ..ClusterInfo::default()
                })),
            },
            // a DELETING cluster may still be listed; a DELETED one is not
            Call::ListClusters => Ok(Reply::Clusters(match self.cluster {
                ClusterLife::Running | ClusterLife::Deleting => vec!["in01-k".into()],
                ClusterLife::Deleted => vec![],
            })),
            Call::DropCluster => {
                self.check_drop(o);
                if self.cluster != ClusterLife::Running {
                    self.violation(format!(
                        "{o:?} sent a second drop of the cluster, which is {:?}",
                        self.cluster
                    ));
                }
                match state {
                    _ if self.restricted => Err(not_exist()),
                    Some(ClusterLife::Running) => {
                        self.cluster = ClusterLife::Deleting;
                        Ok(Reply::Done)
                    }
                    _ => Err(not_exist()),
                }
            }
            Call::DropCollection | Call::HasCollection if state != Some(ClusterLife::Running) => {
                Err(unreachable())
            }
            Call::DropCollection => {
                if self.names_collection(o) {
                    self.check_drop(o);
                    self.collection = false;
                }
                // v2: a drop of a missing collection is a success
                Ok(Reply::Done)
            }
            Call::HasCollection => Ok(Reply::Has(self.names_collection(o) && self.collection)),
            other => panic!("the model has no {other:?}"),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.verbose {
            self.trace.push(line());
        }
    }

    fn violation(&mut self, what: String) {
        panic!("VIOLATION: {what}\n{}", self.trace.join("\n"));
    }

    /// A drop by `o`: never for a resource another live object names, never by an Orphan or
    /// protected object.
    fn check_drop(&mut self, o: Obj) {
        let me = self.obj(o).clone();
        if me.orphan || me.protected || me.observe_only {
            self.violation(format!(
                "{o:?} dropped although Orphan, protected or read-only"
            ));
        }
        if let Some(other) = OBJS.into_iter().find(|&other| {
            self.same_resource(o, other) && self.obj(other).present && !self.obj(other).deleted
        }) {
            self.violation(format!(
                "{o:?} dropped a resource that live {other:?} names"
            ));
        }
    }

    fn resource_gone(&self, o: Obj) -> bool {
        let cluster_gone = self.cluster == ClusterLife::Deleted;
        if o.is_cluster() {
            !self.names_cluster(o) || cluster_gone
        } else {
            !self.names_collection(o) || cluster_gone || !self.collection
        }
    }

    /// What the operator's shell would gather for a deleted object.
    fn gate_facts(&self, o: Obj) -> GateFacts {
        let me = self.obj(o);
        let accepted = me.recorded.deletion.drop_accepted_time.is_some();
        let dependents = if self.synced && o.is_cluster() && !accepted {
            [Obj::X, Obj::Y]
                .into_iter()
                .filter(|&c| self.obj(c).present && self.obj(c).parent == o)
                .map(|c| format!("ZillizCollection/{c:?}"))
                .collect()
        } else {
            Vec::new()
        };
        // another live object naming it keeps it, and so does an older one (C1 < C2, X < Y)
        let keeper = if self.synced {
            OBJS.into_iter()
                .filter(|&other| self.same_resource(o, other) && self.obj(other).present)
                .find(|&other| !self.obj(other).deleted || (other as usize) < (o as usize))
                .map(|other| format!("{other:?}"))
        } else {
            None
        };
        GateFacts {
            policy: if me.orphan {
                DeletionPolicy::Orphan
            } else {
                DeletionPolicy::Delete
            },
            delete_allowed: !me.observe_only,
            protected: me.protected,
            caches_synced: self.synced,
            dependents,
            invalid_spec: None,
            keeper,
        }
    }

    /// What resolving a deleted object gives: a plan, or why there is none.
    fn plan(&self, o: Obj) -> Result<Plan, Unresolved> {
        let me = self.obj(o);
        let accepted = me.recorded.deletion.drop_accepted_time.is_some();
        let container = if o.is_cluster() {
            Container::None
        } else {
            let parent = self.obj(me.parent);
            match (parent.present, me.record) {
                (true, _) => Container::Cluster {
                    hint_gone: parent.hint_gone,
                    endpoint_known: parent.endpoint,
                },
                (false, Some(endpoint)) => Container::Cluster {
                    hint_gone: false,
                    endpoint_known: endpoint,
                },
                (false, None) => {
                    return Err(Unresolved::ReferenceNotFound(format!(
                        "ZillizCluster {:?} does not exist in this namespace",
                        me.parent
                    )));
                }
            }
        };
        Ok(Plan {
            what: format!("{o:?}"),
            cluster_id: Some("in01-k".into()),
            accepted,
            release_collection: false,
            container,
            create: None,
            desired: Default::default(),
            update: false,
        })
    }

    /// Runs a protocol against the model API.
    fn run<T>(
        &mut self,
        o: Obj,
        protocol: impl Fn(&mut kinds::Script<'_>) -> Result<T, kinds::Step>,
    ) -> Result<T, ApiError> {
        let (out, _) = kinds::run(protocol, |call, _| self.answer(o, call), kinds::MAX_CALLS);
        out
    }

    fn reconcile(&mut self, o: Obj) {
        let me = self.obj(o).clone();
        if !me.present {
            return;
        }
        if !me.deleted {
            self.observe(o);
            return;
        }
        let input = match gate(&self.gate_facts(o)) {
            Some(g) => Input::Gate(g),
            None => match self.plan(o) {
                Err(why) => Input::Unresolved(why),
                Ok(plan) => Input::Attempt(if o.is_cluster() {
                    self.run(o, |s| ZillizCluster::drop_protocol(&plan, s))
                        .unwrap_or_else(Attempt::Failed)
                } else {
                    self.run(o, |s| ZillizCollection::drop_protocol(&plan, s))
                        .unwrap_or_else(Attempt::Failed)
                }),
            },
        };
        self.log(|| format!("  {o:?}: {input:?}"));
        let decision = decide("model", "r", &me.recorded, input, "2026-01-01T00:00:00Z");
        self.log(|| format!("  {o:?}: {decision:?}"));
        match decision {
            Decision::Release(note) => {
                let released_by_api =
                    matches!(note.reason, Reason::Dropped | Reason::AlreadyAbsent);
                if released_by_api && (me.orphan || me.observe_only || !self.resource_gone(o)) {
                    self.violation(format!(
                        "{o:?} let go as {} while its resource still exists",
                        note.reason
                    ));
                }
                if note.reason == Reason::Orphaned && !me.orphan && !me.observe_only {
                    self.violation(format!("{o:?} orphaned without Orphan"));
                }
                self.obj_mut(o).present = false;
            }
            Decision::Keep {
                reason,
                message,
                deletion,
                polls,
                ..
            } => {
                let lost = std::mem::take(&mut self.lose_write);
                let obj = self.obj_mut(o);
                match polls {
                    Polls::Count => obj.recorded.polls += 1,
                    Polls::Reset => obj.recorded.polls = 0,
                    Polls::Leave => {}
                }
                if let Some(d) = deletion
                    && !lost
                {
                    obj.recorded.deletion = d;
                    obj.recorded.synced = Some((reason.as_str().into(), message));
                }
            }
        }
    }

    /// A live object's observation: what its status will tell others.
    fn observe(&mut self, o: Obj) {
        if o.is_cluster() {
            let plan = Plan {
                what: format!("{o:?}"),
                cluster_id: Some("in01-k".into()),
                accepted: false,
                release_collection: false,
                container: Container::None,
                create: None,
                desired: Default::default(),
                update: false,
            };
            let found = self.run(o, |s| ZillizCluster::observe_protocol(&plan, s));
            let obj = self.obj_mut(o);
            match found {
                Ok(Ok(kinds::Observed::Exists {
                    endpoint,
                    cluster_state,
                    ..
                })) => {
                    obj.endpoint = endpoint.is_some();
                    obj.hint_gone = matches!(
                        cluster_state,
                        Some(kinds::ClusterState::Deleting | kinds::ClusterState::Deleted)
                    );
                }
                Ok(Ok(kinds::Observed::Absent { .. })) => obj.hint_gone = true,
                // Ready=False for another reason: no longer NotFound
                _ => obj.hint_gone = obj.hint_gone && obj.endpoint,
            }
        } else {
            let parent = self.obj(self.obj(o).parent).clone();
            if parent.present && !parent.hint_gone {
                self.obj_mut(o).record = Some(parent.endpoint);
            }
        }
    }

    fn step(&mut self, ev: &Ev) {
        self.log(|| format!("{ev:?}"));
        match *ev {
            Ev::Delete(o) => self.obj_mut(o).deleted = true,
            Ev::Reconcile(o) => self.reconcile(o),
            Ev::SetOrphan(o, on) => self.obj_mut(o).orphan = on,
            Ev::Protect(o, on) => self.obj_mut(o).protected = on,
            Ev::ObserveOnly(o, on) => self.obj_mut(o).observe_only = on,
            Ev::Fault(f) => self.fault = Some(f),
            Ev::Restrict(on) => self.restricted = on,
            Ev::DroppedOutside => {
                if self.cluster == ClusterLife::Running {
                    self.cluster = ClusterLife::Deleting
                }
            }
            Ev::FinishDeleting => {
                if self.cluster == ClusterLife::Deleting {
                    self.cluster = ClusterLife::Deleted
                }
            }
            Ev::LoseNextWrite => self.lose_write = true,
            Ev::RemovedByHand(o) => self.obj_mut(o).present = false,
            Ev::Restart => {
                self.synced = false;
                for obj in &mut self.objects {
                    obj.recorded.polls = 0;
                }
            }
            Ev::Synced => self.synced = true,
        }
    }
}

fn obj() -> impl Strategy<Value = Obj> {
    prop_oneof![Just(Obj::C1), Just(Obj::C2), Just(Obj::X), Just(Obj::Y)]
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => obj().prop_map(Ev::Delete),
        8 => obj().prop_map(Ev::Reconcile),
        1 => (obj(), any::<bool>()).prop_map(|(o, on)| Ev::SetOrphan(o, on)),
        1 => (obj(), any::<bool>()).prop_map(|(o, on)| Ev::Protect(o, on)),
        1 => (obj(), any::<bool>()).prop_map(|(o, on)| Ev::ObserveOnly(o, on)),
        2 => prop_oneof![
            Just(Fault::Transient),
            Just(Fault::Unknown),
            Just(Fault::InvalidParameter),
            Just(Fault::Unauthorized)
        ]
        .prop_map(Ev::Fault),
        1 => any::<bool>().prop_map(Ev::Restrict),
        1 => Just(Ev::DroppedOutside),
        1 => Just(Ev::FinishDeleting),
        1 => Just(Ev::LoseNextWrite),
        1 => prop_oneof![Just(Obj::C1), Just(Obj::C2)].prop_map(Ev::RemovedByHand),
        1 => Just(Ev::Restart),
        1 => Just(Ev::Synced),
    ]
}

/// Sequences per run: `MODEL_CASES` overrides the default.
fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_deletion_invariant_holds_for_every_sequence(
        c1_orphan in any::<bool>(),
        y_shares in any::<bool>(),
        c2_shares in any::<bool>(),
        y_parent in prop_oneof![Just(Obj::C1), Just(Obj::C2)],
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let mut world = initial(c1_orphan, y_shares, c2_shares, y_parent);
        for ev in &events {
            world.step(ev);
        }
    }
}

/// The scenarios behind the five defects, each as one fixed sequence: they must pass too (the
/// random sequences find them, these say what they are).
#[test]
fn the_five_defects_as_fixed_sequences() {
    use Ev::*;
    type Check = fn(&World) -> bool;
    let scenarios: Vec<(&str, World, Vec<Ev>, Check)> = vec![
        (
            "1: 80020 after a key lost its rights: the collection is dropped, not released",
            initial(false, false, false, Obj::C1),
            vec![
                Reconcile(Obj::C1),
                Reconcile(Obj::X),
                Restrict(true),
                Reconcile(Obj::C1),
                Delete(Obj::X),
                Reconcile(Obj::X),
                Reconcile(Obj::X),
            ],
            |w| !w.obj(Obj::X).present && !w.collection,
        ),
        (
            "2: the cluster object deleted with Orphan first",
            initial(true, false, false, Obj::C1),
            vec![
                Delete(Obj::C1),
                Reconcile(Obj::C1),
                Delete(Obj::X),
                Delete(Obj::Y),
                Reconcile(Obj::X),
                Reconcile(Obj::Y),
                Reconcile(Obj::C1),
            ],
            |w| {
                !w.obj(Obj::X).present
                    && !w.collection
                    && !w.obj(Obj::C1).present
                    && w.cluster == ClusterLife::Running
            },
        ),
        (
            "2b: the cluster object removed by hand before the collection was ever observed",
            initial(false, false, false, Obj::C1),
            vec![RemovedByHand(Obj::C1), Delete(Obj::X), Reconcile(Obj::X)],
            |w| {
                w.obj(Obj::X).present
                    && w.collection
                    && w.obj(Obj::X)
                        .recorded
                        .synced
                        .as_ref()
                        .is_some_and(|(r, m)| r == "ReferenceNotFound" && m.contains("Orphan"))
            },
        ),
        (
            "3: a drop answering 1100 while the collection exists",
            initial(false, false, false, Obj::C1),
            vec![
                Reconcile(Obj::C1),
                Delete(Obj::X),
                Ev::Fault(self::Fault::InvalidParameter),
                Reconcile(Obj::X),
            ],
            |w| {
                w.obj(Obj::X).present
                    && w.collection
                    && w.obj(Obj::X)
                        .recorded
                        .synced
                        .as_ref()
                        .is_some_and(|(r, m)| r == "DropFailed" && m.contains("Orphan"))
            },
        ),
        (
            "4: a restart, then a drop before the caches list the object that shares it",
            initial(false, true, false, Obj::C1),
            vec![
                Reconcile(Obj::C1),
                Restart,
                Delete(Obj::X),
                Reconcile(Obj::X),
            ],
            |w| {
                w.obj(Obj::X).present
                    && w.collection
                    && w.obj(Obj::X).recorded.deletion.attempts == 0
            },
        ),
        (
            "5: a cluster drop whose accepted mark was lost",
            initial(false, false, false, Obj::C1),
            vec![
                Delete(Obj::X),
                Reconcile(Obj::X),
                Delete(Obj::Y),
                Reconcile(Obj::Y),
                Delete(Obj::C1),
                LoseNextWrite,
                Reconcile(Obj::C1),
                Reconcile(Obj::C1),
            ],
            |w| {
                w.obj(Obj::C1).present
                    && w.cluster == ClusterLife::Deleting
                    && w.obj(Obj::C1)
                        .recorded
                        .deletion
                        .drop_accepted_time
                        .is_some()
            },
        ),
    ];
    for (name, mut world, events, check) in scenarios {
        world.verbose = true;
        for ev in &events {
            world.step(ev);
        }
        assert!(check(&world), "{name}\n{}", world.trace.join("\n"));
    }
}
