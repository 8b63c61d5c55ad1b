//! AWS IoT registry events on the broker: each committed registry batch's events of the enabled
//! types ([`registry_events`](ferrocore_identity::registry::registry_events); all off until
//! `UpdateEventConfigurations` turns them on) are published on their `$aws/events/...`
//! topics, QoS 1, not retained, in commit order, once the changes are durable.

use std::sync::Arc;

use ferrocore_broker::Broker;
use ferrocore_identity::registry::{Registry, RegistryEvent};
use tracing::debug;

/// Subscribes to `registry`'s events and publishes each through `broker` (held weakly).
pub fn publish_registry_events(registry: &Registry, broker: &Arc<Broker>) {
    let weak_broker = Arc::downgrade(broker);
    registry.subscribe_events(Arc::new(move |events: &[RegistryEvent]| {
        let Some(broker) = weak_broker.upgrade() else {
            return;
        };
        for event in events {
            debug!(topic = %event.topic, "publishing a registry event");
            broker.publish_event(&event.topic, event.payload.to_string());
        }
    }));
}
