//! Kubernetes Events, sent and forgotten.
//!
//! kube's `Recorder` keeps every Event it sent for six minutes, to count repeats of one as a
//! series, and scans them all under one lock on each publish. Liaison publishes on transitions
//! only (a link accepted, a grant refused, access revoked), where repeats are rare; at 10,000
//! grants the kept copies were about 10 MB of the operator's memory (heaptrack: 2.2 MB of a
//! 13 MB peak heap at 2,000 grants, after a revocation wave).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};

/// Who reports: the controller's name and this replica.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
}

/// One Event about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub action: String,
    pub note: String,
}

impl Publisher {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Publisher {
        Publisher {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
        }
    }

    /// Creates the Event in the object's namespace (`default` for cluster-scoped objects, as
    /// kubectl expects them).
    pub async fn publish(&self, note: Note, regarding: ObjectReference) -> Result<(), kube::Error> {
        let event = event(&self.controller, &self.instance, note, regarding, Timestamp::now());
        let namespace = event.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

fn event(controller: &str, instance: &str, note: Note, regarding: ObjectReference, now: Timestamp) -> Event {
    let subject = regarding.name.clone().unwrap_or_else(|| controller.to_string());
    Event {
        metadata: ObjectMeta {
            // Unique per object and instant, as kube names them.
            name: Some(format!("{subject}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        action: Some(note.action),
        reason: Some(note.reason),
        note: Some(note.note),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.to_string()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding),
        reporting_controller: Some(controller.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_and_reporter() {
        let regarding = ObjectReference {
            kind: Some("ClientLink".into()),
            name: Some("techhelp".into()),
            namespace: Some("beta".into()),
            ..Default::default()
        };
        let note = Note {
            warning: true,
            reason: "PartnerMissing".into(),
            action: "Refuse".into(),
            note: "no partner".into(),
        };
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let event = event("liaison", "liaison-0", note, regarding.clone(), now);
        assert_eq!(
            event.metadata.name.as_deref(),
            Some(format!("techhelp.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(event.metadata.namespace.as_deref(), Some("beta"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(
            (event.reason.as_deref(), event.action.as_deref()),
            (Some("PartnerMissing"), Some("Refuse"))
        );
        assert_eq!(event.regarding, Some(regarding));
        assert_eq!(event.reporting_controller.as_deref(), Some("liaison"));
        assert_eq!(event.reporting_instance.as_deref(), Some("liaison-0"));
        assert_eq!(event.event_time, Some(MicroTime(now)));
    }
}
