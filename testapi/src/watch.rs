//! Watch streams: newline-delimited JSON watch events over a chunked body.

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, ListOptions, ResourceType};
use crate::table::{self, Column, TableFormat};
use bytes::Bytes;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often BOOKMARK events are sent when `allowWatchBookmarks=true`.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

/// A parsed watch request.
#[derive(Debug)]
pub struct WatchRequest {
    /// The watched type.
    pub rt: ResourceType,
    /// Version from the URL (objects are presented in it).
    pub version: String,
    /// Namespace restriction.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: Option<LabelSelector>,
    /// Field selector.
    pub fields: Option<FieldSelector>,
    /// `resourceVersion` parameter.
    pub resource_version: Option<String>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Send each event's object as a one-row Table with these columns
    /// (column definitions only in the first event, like kube-apiserver).
    pub table: Option<(Vec<Column>, TableFormat)>,
    /// Whether a Table with column definitions was sent already.
    pub headers_sent: AtomicBool,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.as_ref().is_none_or(|l| l.matches(obj))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }

    fn present(&self, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(self.rt.api_version(&self.version));
        match &self.table {
            Some((cols, f)) => {
                let headers = !self.headers_sent.swap(true, Ordering::Relaxed);
                table::object_table(cols, f, &o, headers)
            }
            None => o,
        }
    }

    /// Translate a store event into the event this watcher sees, if any.
    fn translate(&self, ev: &Event) -> Option<Bytes> {
        if ev.group != self.rt.group || ev.plural != self.rt.plural {
            return None;
        }
        if let Some(ns) = &self.namespace
            && self.rt.namespaced
            && &ev.namespace != ns
        {
            return None;
        }
        let new_m = self.matches(&ev.object);
        let old_m = ev.old.as_ref().is_some_and(|o| self.matches(o));
        let ty = match ev.etype {
            EventType::Added if new_m => "ADDED",
            EventType::Modified if new_m && old_m => "MODIFIED",
            EventType::Modified if new_m => "ADDED",
            EventType::Modified if old_m => "DELETED",
            EventType::Deleted if new_m || old_m => "DELETED",
            _ => return None,
        };
        Some(line(ty, &self.present(&ev.object)))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": meta}),
        )
    }
}

fn line(ty: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Start a watch and return the stream of encoded lines for the response body.
pub fn start(
    app: Arc<App>,
    req: WatchRequest,
) -> ApiResult<impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static> {
    let mut first: Vec<Bytes> = Vec::new();
    let mut gone = false;
    let mut events = {
        let store = app
            .store
            .lock()
            .map_err(|_| ApiError::new(500, "InternalError", "store lock poisoned"))?;
        let rv_param = req.resource_version.as_deref().unwrap_or("");
        let from = if rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            Some(rv_param.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resourceVersion {rv_param:?}: must be an integer"
                ))
            })?)
        };
        if from.is_none() || req.send_initial_events {
            let opts = ListOptions {
                namespace: req.namespace.clone(),
                labels: req.labels.clone(),
                fields: req.fields.clone(),
                ..Default::default()
            };
            for o in store.list(&req.rt, &opts)?.items {
                first.push(line("ADDED", &req.present(&o)));
            }
            if req.send_initial_events {
                first.push(req.bookmark(store.rv, true));
            }
        } else if let Some(n) = from {
            let compacted = store.compacted_for(&req.rt.group, &req.rt.plural);
            if n < compacted {
                gone = true;
                let status = ApiError::gone(format!("too old resource version: {n} ({compacted})"))
                    .to_status();
                first.push(line("ERROR", &status));
            } else {
                first.extend(
                    store
                        .history_after(&req.rt.group, &req.rt.plural, n)
                        .filter_map(|e| req.translate(e)),
                );
            }
        }
        app.events.subscribe()
    };
    let mut epoch = app.close_epoch.subscribe();
    epoch.borrow_and_update();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        loop {
            tokio::select! {
                r = events.recv() => match r {
                    Ok(ev) => {
                        if let Some(b) = req.translate(&ev) && tx.send(b).await.is_err() {
                            return;
                        }
                    }
                    // Lagged or closed: end the stream; the client re-watches.
                    Err(_) => return,
                },
                _ = tick.tick(), if req.bookmarks => {
                    let Ok(rv) = app.store.lock().map(|s| s.rv) else { return };
                    // Everything up to `rv` is already in the channel: forward it first.
                    loop {
                        match events.try_recv() {
                            Ok(ev) => {
                                if let Some(b) = req.translate(&ev) && tx.send(b).await.is_err() {
                                    return;
                                }
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    if tx.send(req.bookmark(rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = epoch.changed() => return,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(b), rx))
    }))
}
