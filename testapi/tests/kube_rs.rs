//! kube-rs conformance: CRUD, patches, status, generation, watcher,
//! fault recovery and `kube::runtime::finalizer`.

mod common;

use common::*;
use futures::StreamExt;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

#[tokio::test]
async fn crud_conflict_and_generation() {
    let (server, client) = start_with_crd().await;
    let api: Api<Gadget> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();

    let created = api.create(&pp, &gadget("g1", 1)).await.expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.resource_version().expect("rv");
    assert_eq!(
        code(
            &api.create(&pp, &gadget("g1", 1))
                .await
                .expect_err("duplicate")
        ),
        409
    );
    assert_eq!(code(&api.get("missing").await.expect_err("missing")), 404);

    let got = api.get("g1").await.expect("get");
    assert_eq!(got.spec.size, 1);
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(
        list.metadata
            .resource_version
            .is_some_and(|rv| !rv.is_empty())
    );

    // replace bumps generation; stale resourceVersion conflicts
    let mut changed = got.clone();
    changed.spec.size = 2;
    let replaced = api.replace("g1", &pp, &changed).await.expect("replace");
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(replaced.resource_version().as_deref(), Some(rv1.as_str()));
    assert_eq!(
        code(&api.replace("g1", &pp, &changed).await.expect_err("stale")),
        409
    );

    // merge patch; a no-op patch keeps the resourceVersion
    let mp = PatchParams::default();
    let patched = api
        .patch("g1", &mp, &Patch::Merge(json!({"spec": {"size": 3}})))
        .await
        .expect("merge");
    assert_eq!(patched.metadata.generation, Some(3));
    let same = api
        .patch("g1", &mp, &Patch::Merge(json!({"spec": {"size": 3}})))
        .await
        .expect("noop");
    assert_eq!(same.resource_version(), patched.resource_version());
    let labelled = api
        .patch(
            "g1",
            &mp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label");
    assert_eq!(
        labelled.metadata.generation,
        Some(3),
        "metadata changes keep generation"
    );

    // JSON patch: test against null on a missing field passes, a real mismatch is 422
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}
    ]))
    .expect("patch");
    let with_fin = api
        .patch("g1", &mp, &Patch::Json::<()>(jp.clone()))
        .await
        .expect("json patch");
    assert_eq!(with_fin.finalizers(), ["x/y".to_string()]);
    assert_eq!(
        code(
            &api.patch("g1", &mp, &Patch::Json::<()>(jp))
                .await
                .expect_err("test fails")
        ),
        422
    );

    // status subresource: main writes ignore status, /status writes only status
    let st = api
        .patch_status(
            "g1",
            &mp,
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 99}})),
        )
        .await
        .expect("status");
    assert_eq!(st.status, Some(GadgetStatus { ready: true }));
    assert_eq!(st.spec.size, 3);
    assert_eq!(st.metadata.generation, Some(3));
    let ignored = api
        .patch(
            "g1",
            &mp,
            &Patch::Merge(json!({"status": {"ready": false}})),
        )
        .await
        .expect("main");
    assert_eq!(ignored.status, Some(GadgetStatus { ready: true }));
    assert_eq!(
        ignored.resource_version(),
        st.resource_version(),
        "ignored status is a no-op"
    );

    // server-side apply creates, then applies the full intent again (fields left out
    // would be removed: see tests/apply.rs)
    let ap = PatchParams::apply("test").force();
    let applied = api
        .patch("g2", &ap, &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "metadata": {"name": "g2"}, "spec": {"size": 7}})))
        .await
        .expect("apply create");
    assert_eq!(applied.spec.size, 7);
    let applied = api
        .patch("g2", &ap, &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "spec": {"size": 7, "colour": "red"}})))
        .await
        .expect("apply update");
    assert_eq!(
        (applied.spec.size, applied.spec.colour.as_deref()),
        (7, Some("red"))
    );
    assert_eq!(applied.metadata.generation, Some(2));

    // selectors and paging
    let sel = api
        .list(&ListParams::default().labels("a=b"))
        .await
        .expect("labels");
    assert_eq!(
        sel.items.iter().map(|g| g.name_any()).collect::<Vec<_>>(),
        ["g1"]
    );
    let fsel = api
        .list(&ListParams::default().fields("metadata.name=g2"))
        .await
        .expect("fields");
    assert_eq!(fsel.items.len(), 1);
    let page = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("continue");
    let page2 = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(page2.items.len(), 1);
    assert_ne!(page.items[0].name_any(), page2.items[0].name_any());

    // unknown namespace
    let other: Api<Gadget> = Api::namespaced(client.clone(), "nope");
    assert_eq!(
        code(&other.create(&pp, &gadget("g", 1)).await.expect_err("no ns")),
        404
    );
    let all: Api<Gadget> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all ns")
            .items
            .len(),
        2
    );

    // delete: finalizer holds the object
    let d = api
        .delete("g1", &DeleteParams::default())
        .await
        .expect("delete");
    let held = d.left().expect("object returned");
    assert!(held.metadata.deletion_timestamp.is_some());
    let again = api
        .delete("g1", &DeleteParams::default())
        .await
        .expect("delete again");
    assert_eq!(
        again.left().map(|o| o.resource_version()),
        Some(held.resource_version())
    );
    let add_new = api
        .patch(
            "g1",
            &mp,
            &Patch::Merge(json!({"metadata": {"finalizers": ["x/y", "x/z"]}})),
        )
        .await;
    assert_eq!(code(&add_new.expect_err("no new finalizers")), 422);
    api.patch(
        "g1",
        &mp,
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert_eq!(code(&api.get("g1").await.expect_err("gone")), 404);
    api.delete("g2", &DeleteParams::default())
        .await
        .expect("delete g2");
    assert_eq!(code(&api.get("g2").await.expect_err("gone")), 404);
    server.shutdown().await;
}

/// Spawn a watcher forwarding its events.
fn spawn_watcher(
    api: Api<Gadget>,
    config: watcher::Config,
) -> mpsc::UnboundedReceiver<watcher::Event<Gadget>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = watcher(api, config).boxed();
        while let Some(ev) = s.next().await {
            if let Ok(ev) = ev
                && tx.send(ev).is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Next Apply/Delete event (skipping init markers), as ("apply"|"delete", name, size).
async fn next_change(
    rx: &mut mpsc::UnboundedReceiver<watcher::Event<Gadget>>,
) -> (String, String, i32) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .expect("open");
        match ev {
            watcher::Event::Apply(g) | watcher::Event::InitApply(g) => {
                return ("apply".into(), g.name_any(), g.spec.size);
            }
            watcher::Event::Delete(g) => return ("delete".into(), g.name_any(), g.spec.size),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

#[tokio::test]
async fn watcher_sees_changes_in_order_without_relisting() {
    let (server, client) = start_with_crd().await;
    let api: Api<Gadget> = Api::default_namespaced(client);
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    // wait for the initial list to finish
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("init")
            .expect("open");
        if matches!(ev, watcher::Event::InitDone) {
            break;
        }
    }
    api.create(&PostParams::default(), &gadget("w1", 1))
        .await
        .expect("create");
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .expect("patch");
    api.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(next_change(&mut rx).await, ("apply".into(), "w1".into(), 1));
    assert_eq!(next_change(&mut rx).await, ("apply".into(), "w1".into(), 2));
    assert_eq!(
        next_change(&mut rx).await,
        ("delete".into(), "w1".into(), 2)
    );

    let before = server
        .request_counts()
        .get(LIST_GADGETS)
        .copied()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server
        .request_counts()
        .get(LIST_GADGETS)
        .copied()
        .unwrap_or(0);
    assert_eq!(before, 1, "one initial list");
    assert_eq!(after, before, "watcher must not relist while idle");
    server.shutdown().await;
}

#[tokio::test]
async fn watcher_recovers_after_closed_watches_and_compaction() {
    let (server, client) = start_with_crd().await;
    let api: Api<Gadget> = Api::default_namespaced(client);
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    api.create(&PostParams::default(), &gadget("a", 1))
        .await
        .expect("create a");
    assert_eq!(next_change(&mut rx).await.1, "a");

    // closed watches: the watcher re-watches from its resourceVersion
    server.faults().close_watches();
    api.create(&PostParams::default(), &gadget("b", 2))
        .await
        .expect("create b");
    assert_eq!(next_change(&mut rx).await.1, "b");
    let lists = server
        .request_counts()
        .get(LIST_GADGETS)
        .copied()
        .unwrap_or(0);

    // compaction + closed watches: 410 on re-watch, so the watcher relists
    server.faults().compact();
    server.faults().close_watches();
    api.create(&PostParams::default(), &gadget("c", 3))
        .await
        .expect("create c");
    let mut seen = Vec::new();
    while !seen.contains(&"c".to_string()) {
        seen.push(next_change(&mut rx).await.1);
    }
    let relists = server
        .request_counts()
        .get(LIST_GADGETS)
        .copied()
        .unwrap_or(0);
    assert!(
        relists > lists,
        "compaction forces a relist ({lists} -> {relists})"
    );
    assert!(
        relists <= lists + 3,
        "but no relist loop ({lists} -> {relists})"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raw_watch_semantics() {
    let (server, client) = start_with_crd().await;
    let api: Api<Gadget> = Api::default_namespaced(client);
    let g = api
        .create(&PostParams::default(), &gadget("r", 1))
        .await
        .expect("create");
    let rv = g.resource_version().expect("rv");

    // from "0": synthetic ADDED first
    let mut s = api
        .watch(&WatchParams::default().timeout(2), "0")
        .await
        .expect("watch")
        .boxed();
    match s.next().await {
        Some(Ok(WatchEvent::Added(o))) => assert_eq!(o.name_any(), "r"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    // timeoutSeconds ends the stream
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while s.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "stream ends after timeoutSeconds");

    // from a resourceVersion: only later events
    let mut s = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    api.patch(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 5}})),
    )
    .await
    .expect("patch");
    match tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("in time")
    {
        Some(Ok(WatchEvent::Modified(o))) => assert_eq!(o.spec.size, 5),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // bookmarks
    let mut s = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut got_bookmark = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), s.next()).await {
        if let Ok(WatchEvent::Bookmark(b)) = ev {
            assert!(!b.metadata.resource_version.is_empty());
            got_bookmark = true;
            break;
        }
    }
    assert!(got_bookmark, "bookmark within 5 s");

    // too old after compaction: ERROR 410
    server.faults().compact();
    let mut s = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match s.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected ERROR 410, got {other:?}"),
    }

    // streaming list (sendInitialEvents) through the watcher
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default().streaming_lists());
    let mut init_applied = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("in time")
            .expect("open")
        {
            watcher::Event::InitApply(o) => init_applied = o.name_any() == "r",
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert!(init_applied);
    server.shutdown().await;
}

#[derive(Debug)]
struct TestError(String);
impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for TestError {}

struct Ctx {
    api: Api<Gadget>,
    cleaned: AtomicBool,
}

const FINALIZER: &str = "test.example.com/cleanup";

async fn reconcile(obj: Arc<Gadget>, ctx: Arc<Ctx>) -> Result<Action, TestError> {
    let c = ctx.clone();
    finalizer(&ctx.api, FINALIZER, obj, |ev| async move {
        match ev {
            FinalizerEvent::Apply(_) => Ok::<_, TestError>(Action::await_change()),
            FinalizerEvent::Cleanup(_) => {
                c.cleaned.store(true, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| TestError(e.to_string()))
}

fn error_policy(_: Arc<Gadget>, e: &TestError, _: Arc<Ctx>) -> Action {
    eprintln!("reconcile error: {e}");
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn runtime_finalizer_adds_cleans_up_and_releases() {
    let (server, client) = start_with_crd().await;
    let api: Api<Gadget> = Api::default_namespaced(client);
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        cleaned: AtomicBool::new(false),
    });
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|_| async {}),
    );
    api.create(&PostParams::default(), &gadget("f1", 1))
        .await
        .expect("create");
    let has_fin = eventually(Duration::from_secs(10), || async {
        api.get("f1")
            .await
            .is_ok_and(|g| g.finalizers().iter().any(|f| f == FINALIZER))
    })
    .await;
    assert!(has_fin, "finalizer added");

    // settled: no reconcile loop (a handful of writes at most)
    let patches = || {
        server
            .request_counts()
            .get("patch gadgets.test.example.com")
            .copied()
            .unwrap_or(0)
    };
    let p0 = patches();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(patches(), p0, "no writes while idle");

    api.delete("f1", &DeleteParams::default())
        .await
        .expect("delete");
    let gone = eventually(Duration::from_secs(10), || async {
        api.get("f1").await.is_err()
    })
    .await;
    assert!(gone, "object released after cleanup");
    assert!(ctx.cleaned.load(Ordering::SeqCst), "Cleanup ran");
    controller.abort();
    server.shutdown().await;
}
