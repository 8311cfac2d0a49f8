//! The topic hub behind `/ws`: every change is published once, serialised once, and fanned
//! out to every socket subscribed to its topic.

use axum::extract::ws::Utf8Bytes;
use contracts::{Event, EventKind, Topic, WsServerMessage};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Events kept for slow sockets before they are told to resync.
pub const HUB_CAPACITY: usize = 1024;

/// An event ready to send: its topic (for filtering) and its JSON text, shared by all sockets.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub topic: Topic,
    pub text: Utf8Bytes,
}

/// Publishing never waits for subscribers: a socket that falls more than `HUB_CAPACITY`
/// events behind loses them and receives a `resync` instead.
pub struct EventHub {
    sender: broadcast::Sender<Envelope>,
    /// Next `seq` per topic. Held while sending so events leave in `seq` order.
    seqs: Mutex<[u64; Topic::ALL.len()]>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(HUB_CAPACITY)
    }
}

impl EventHub {
    pub fn new(capacity: usize) -> EventHub {
        let (sender, _) = broadcast::channel(capacity);
        EventHub {
            sender,
            seqs: Mutex::new([0; Topic::ALL.len()]),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.sender.subscribe()
    }

    /// Publishes `data` (the resource as the API returns it) on `topic`.
    pub fn publish(&self, topic: Topic, event: EventKind, id: Uuid, data: &impl Serialize) {
        let data = match serde_json::to_value(data) {
            Ok(data) => data,
            Err(err) => {
                tracing::error!(error = %err, "event data does not serialise; event dropped");
                return;
            }
        };
        let mut seqs = self.seqs.lock();
        let slot = &mut seqs[topic_index(topic)];
        *slot += 1;
        let message = WsServerMessage::Event(Event {
            topic,
            event,
            id,
            seq: *slot,
            data,
        });
        let text = match serde_json::to_string(&message) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(error = %err, "event does not serialise; event dropped");
                return;
            }
        };
        // An error only means nobody is subscribed right now.
        let _ = self.sender.send(Envelope {
            topic,
            text: Utf8Bytes::from(text),
        });
    }
}

fn topic_index(topic: Topic) -> usize {
    match topic {
        Topic::Providers => 0,
        Topic::Agents => 1,
        Topic::Tasks => 2,
        Topic::Runs => 3,
        Topic::Workers => 4,
        Topic::Pool => 5,
        Topic::Tags => 6,
        Topic::Concurrency => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seq_grows_per_topic() {
        let hub = EventHub::new(16);
        let mut rx = hub.subscribe();
        let id = Uuid::nil();
        hub.publish(Topic::Agents, EventKind::Created, id, &1);
        hub.publish(Topic::Tasks, EventKind::Created, id, &2);
        hub.publish(Topic::Agents, EventKind::Updated, id, &3);
        let seqs: Vec<(Topic, u64)> = (0..3)
            .map(|_| {
                let env = rx.try_recv().unwrap();
                let value: serde_json::Value = serde_json::from_str(env.text.as_str()).unwrap();
                (env.topic, value["seq"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(
            seqs,
            [(Topic::Agents, 1), (Topic::Tasks, 1), (Topic::Agents, 2)]
        );
    }
}
