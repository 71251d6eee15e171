//! Kubernetes Events (`events.k8s.io/v1`), written without a cache.
//!
//! kube's `Recorder` remembers every Event it wrote for six minutes, to turn repeats into a
//! series, and walks that whole cache under one lock on every write: in a teardown of 10,000
//! objects (12,500 Events) that is memory and CPU that grow with the square of the work. The
//! operator already writes each Event once: one per finished deletion, one per distinct error
//! (not one per retry), so there are no repeats to fold.

use jiff::Timestamp;
use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::events::{Event, EventType, Reporter},
};

/// Writes Events for one reporting controller.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    reporter: Reporter,
}

impl Publisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Publisher { client, reporter }
    }

    /// The Event as it is created: named `<object>.<nanoseconds>` like kube's recorder and
    /// `kubectl`'s, in the object's namespace.
    pub fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }

    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let event = self.event(ev, regarding, Timestamp::now());
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::testcontext;

    #[tokio::test]
    async fn an_event_names_its_object_reporter_and_time() {
        let (ctx, _api) = testcontext();
        let publisher = Publisher::new(
            ctx.client.clone(),
            Reporter {
                controller: "zilliz-operator".into(),
                instance: Some("pod-1".into()),
            },
        );
        let regarding = ObjectReference {
            kind: Some("ZillizCollection".into()),
            name: Some("books".into()),
            namespace: Some("team-a".into()),
            ..Default::default()
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "DropFailed".into(),
            note: Some("denied".into()),
            action: "Drop".into(),
            secondary: None,
        };
        let now = Timestamp::from_nanosecond(0x1234).unwrap();
        let e = publisher.event(&ev, &regarding, now);
        assert_eq!(e.metadata.name.as_deref(), Some("books.1234"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("DropFailed"));
        assert_eq!(e.action.as_deref(), Some("Drop"));
        assert_eq!(e.reporting_controller.as_deref(), Some("zilliz-operator"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(e.regarding.as_ref(), Some(&regarding));
        assert!(e.series.is_none());
    }
}
