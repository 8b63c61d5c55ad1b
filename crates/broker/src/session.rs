//! A client session: its subscriptions and its outbound messages (queued, in flight), which
//! outlive a connection when the session is persistent. The connection's writer pulls from
//! here; the router pushes here. All state sits behind one mutex held only briefly, never
//! across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use ferrocore_mqtt::{Packet, ProtocolVersion, QoS, SubscriptionOptions, reason};
use ferrocore_store::{OutboundRecord, OutboundState, Store, WriteOp};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::auth::{AllowedTopics, Principal};
use crate::events::DisconnectReason;
use crate::message::Message;

/// One delivery of a message to a session.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub message: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// Position in the session's queue (the store's key for persistent sessions).
    pub seq: u64,
}

impl Delivery {
    fn cost(&self) -> usize {
        self.message.payload.len() + self.message.topic.len() + 64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflightStage {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent, waiting for PUBCOMP.
    Released,
}

#[derive(Debug)]
pub(crate) struct Inflight {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub stage: InflightStage,
    /// Whether it went out on the current connection (cleared on resumption, for resending).
    pub sent: bool,
    pub attempts: u32,
}

/// What the writer of a connection sends next.
pub(crate) enum Outgoing {
    Publish {
        delivery: Delivery,
        packet_id: u16,
        dup: bool,
    },
    PubRel {
        packet_id: u16,
    },
    Packet(Packet),
}

/// Control packets waiting for a connection's writer, and the signal that wakes it.
#[derive(Default)]
pub(crate) struct Outbox {
    packets: Mutex<Vec<Packet>>,
    pub wake: Notify,
    /// Signalled when the writer has taken the queued control packets.
    pub drained: Notify,
}

impl Outbox {
    pub fn push(&self, packet: Packet) -> usize {
        let len = {
            let mut packets = self.packets.lock();
            packets.push(packet);
            packets.len()
        };
        self.wake.notify_one();
        len
    }

    pub fn take(&self, into: &mut Vec<Outgoing>) {
        // Taken whole, so an idle connection keeps no capacity for packets it once queued.
        let packets = std::mem::take(&mut *self.packets.lock());
        into.extend(packets.into_iter().map(Outgoing::Packet));
        self.drained.notify_waiters();
    }

    pub fn pending(&self) -> usize {
        self.packets.lock().len()
    }
}

/// The connection currently attached to a session.
pub(crate) struct Attached {
    pub conn_id: u64,
    pub outbox: Arc<Outbox>,
    /// Fired to make the connection close itself.
    pub kick: Arc<Kick>,
    /// Where the client connected from and to, its keep alive in force and when its CONNECT
    /// was accepted (Unix ms): what GetConnection reports.
    pub peer_addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub keep_alive: u16,
    pub connected_at_ms: u64,
}

/// How a connection is asked to close from outside it (takeover, shutdown, revocation, the
/// DeleteConnection API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KickOrder {
    /// The MQTT 5 DISCONNECT reason code sent first.
    pub code: u8,
    /// Whether the will is published.
    pub will: bool,
    /// Whether the session ends with the connection even if it is persistent.
    pub end_session: bool,
}

/// A request to close a connection from outside it; the first order wins.
#[derive(Default)]
pub(crate) struct Kick {
    pub order: Mutex<Option<KickOrder>>,
    pub notify: Notify,
}

impl Kick {
    /// Closes with DISCONNECT `code`. The will is published after a takeover, not after a
    /// shutdown, nor when the connection is no longer authorized (it would be published in
    /// the name of an identity that may not publish any more).
    pub fn fire(&self, code: u8) {
        self.fire_with(KickOrder {
            code,
            will: !matches!(code, reason::NOT_AUTHORIZED | reason::SERVER_SHUTTING_DOWN),
            end_session: false,
        });
    }

    pub fn fire_with(&self, order: KickOrder) {
        self.order.lock().get_or_insert(order);
        self.notify.notify_one();
    }
}

/// When and why a session's last connection ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastDisconnect {
    pub at_ms: u64,
    /// Unknown for sessions restored from the store.
    pub reason: Option<DisconnectReason>,
}

pub(crate) struct SessionLimits {
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    pub max_redeliveries: u32,
}

pub(crate) struct SessionState {
    /// Seconds the session outlives its connection; 0 ends it with the connection.
    pub expiry: u32,
    pub protocol: ProtocolVersion,
    /// Filter as subscribed (with any `$share/<group>/` prefix) → options and identifier.
    pub subscriptions: HashMap<String, (SubscriptionOptions, Option<u32>)>,
    pub attached: Option<Attached>,
    /// Changes whenever a connection attaches or detaches; timers compare it.
    pub generation: u64,
    pub next_seq: u64,
    next_packet_id: u16,
    pub inflight: VecDeque<Inflight>,
    pub queue: VecDeque<Delivery>,
    queued_bytes: usize,
    pub inbound_qos2: HashSet<u16>,
    /// How many QoS 1/2 messages may be in flight to the client (its Receive Maximum).
    pub window: usize,
    pub dropped: u64,
    /// Whether the session was taken over or ended: the writer of an old connection stops.
    pub ended: bool,
    /// Who the attached (or last) connection authenticated as; checked on every delivery.
    pub principal: Arc<Principal>,
    /// Topics `principal` was allowed to receive (`iot:Receive`), decided under this lock.
    pub receive_cache: AllowedTopics,
    /// A publisher is held back until this queue has room again.
    room_wanted: bool,
    /// When and why the last connection ended (reported while none is attached).
    pub last_disconnect: Option<LastDisconnect>,
}

pub(crate) struct Session {
    /// Unique per session object (a new clean session gets a new one).
    pub key: u64,
    pub client_id: Arc<str>,
    pub state: Mutex<SessionState>,
    /// Signalled when a queue that held publishers back has room again, or its connection
    /// went away.
    pub room: Notify,
}

/// What became of a delivery offered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    Accepted,
    /// Accepted beyond the queue limits: hold the publisher back until there is room.
    Pressured,
    Refused,
}

impl Session {
    pub fn new(key: u64, client_id: Arc<str>, protocol: ProtocolVersion, expiry: u32) -> Session {
        Session {
            key,
            client_id,
            state: Mutex::new(SessionState {
                expiry,
                protocol,
                subscriptions: HashMap::new(),
                attached: None,
                generation: 0,
                next_seq: 1,
                next_packet_id: 1,
                inflight: VecDeque::new(),
                queue: VecDeque::new(),
                queued_bytes: 0,
                inbound_qos2: HashSet::new(),
                window: 65535,
                dropped: 0,
                ended: false,
                principal: Principal::nobody(),
                receive_cache: AllowedTopics::default(),
                room_wanted: false,
                last_disconnect: None,
            }),
            room: Notify::new(),
        }
    }

    /// Waits until publishers held back by this session may go on (see
    /// [`SessionState::has_room`]), or `limit` has passed.
    pub async fn wait_for_room(&self, limits: &SessionLimits, limit: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.room.notified();
                if self.state.lock().has_room(limits) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

impl SessionState {
    pub fn persistent(&self) -> bool {
        self.expiry > 0
    }

    /// Adds a delivery for this session. QoS 0 is dropped while nobody is connected; QoS 1/2
    /// of a persistent session is recorded in the store in the same critical section, so the
    /// store sees each session's changes in order.
    ///
    /// A full queue makes room by dropping its oldest QoS 0 message. Failing that, a QoS 1/2
    /// message for a connected (slow) client is still taken, up to twice the limits, and
    /// reported as [`Enqueued::Pressured`]: its publisher is then held back (flow control)
    /// instead of the message being lost. An offline session refuses at the limits.
    pub fn enqueue(
        &mut self,
        client_id: &str,
        mut delivery: Delivery,
        limits: &SessionLimits,
        store: &Store,
        commits: &mut Vec<ferrocore_store::Commit>,
    ) -> Enqueued {
        if self.ended || (self.attached.is_none() && delivery.qos == QoS::AtMostOnce) {
            return Enqueued::Refused;
        }
        let cost = delivery.cost();
        let over = |state: &SessionState, factor: usize| {
            state.queue.len() >= limits.max_queued_messages.saturating_mul(factor)
                || state.queued_bytes + cost > limits.max_queued_bytes.saturating_mul(factor)
        };
        let mut outcome = Enqueued::Accepted;
        while over(self, 1) {
            if let Some(i) = self.queue.iter().position(|d| d.qos == QoS::AtMostOnce) {
                if let Some(old) = self.queue.remove(i) {
                    self.queued_bytes -= old.cost();
                }
                self.dropped += 1;
                continue;
            }
            if delivery.qos == QoS::AtMostOnce || self.attached.is_none() || over(self, 2) {
                self.dropped += 1;
                return Enqueued::Refused;
            }
            self.room_wanted = true;
            outcome = Enqueued::Pressured;
            break;
        }
        delivery.seq = self.next_seq;
        self.next_seq += 1;
        if self.persistent() && delivery.qos != QoS::AtMostOnce {
            commits.push(store.submit(vec![WriteOp::PutOutbound(OutboundRecord {
                client_id: client_id.to_string(),
                seq: delivery.seq,
                state: OutboundState::Queued,
                subscription_ids: delivery.subscription_ids.clone(),
                message: delivery.message.to_stored(Instant::now()),
            })]));
        }
        self.queued_bytes += cost;
        self.queue.push_back(delivery);
        outcome
    }

    /// Whether publishers held back by this session may go on: its queue is under the limit
    /// again, or no connection is draining it any more (then waiting would not help).
    pub fn has_room(&self, limits: &SessionLimits) -> bool {
        self.ended
            || self.attached.is_none()
            || (self.queue.len() < limits.max_queued_messages
                && self.queued_bytes < limits.max_queued_bytes)
    }

    /// Takes what the attached connection `conn_id` may send now: unsent in-flight messages
    /// (resumption), then queued ones while the in-flight window has room.
    pub fn take_sendable(
        &mut self,
        client_id: &str,
        conn_id: u64,
        limits: &SessionLimits,
        store: &Store,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        if self.ended || self.attached.as_ref().map(|a| a.conn_id) != Some(conn_id) {
            return false;
        }
        let persistent = self.persistent();
        let mut ops = Vec::new();
        let mut i = 0;
        while i < self.inflight.len() {
            let entry = &mut self.inflight[i];
            if entry.sent {
                i += 1;
                continue;
            }
            if entry.stage == InflightStage::Published && entry.attempts >= limits.max_redeliveries
            {
                let dropped = self.inflight.remove(i);
                if let (true, Some(d)) = (persistent, dropped) {
                    ops.push(WriteOp::DeleteOutbound {
                        client_id: client_id.to_string(),
                        seq: d.delivery.seq,
                    });
                }
                self.dropped += 1;
                continue;
            }
            entry.sent = true;
            entry.attempts += 1;
            out.push(match entry.stage {
                InflightStage::Published => Outgoing::Publish {
                    delivery: entry.delivery.clone(),
                    packet_id: entry.packet_id,
                    dup: entry.attempts > 1,
                },
                InflightStage::Released => Outgoing::PubRel {
                    packet_id: entry.packet_id,
                },
            });
            i += 1;
        }
        while let Some(front) = self.queue.front() {
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= self.window {
                break;
            }
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= delivery.cost();
            if delivery.message.is_expired(now) {
                if persistent && delivery.qos != QoS::AtMostOnce {
                    ops.push(WriteOp::DeleteOutbound {
                        client_id: client_id.to_string(),
                        seq: delivery.seq,
                    });
                }
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                out.push(Outgoing::Publish {
                    delivery,
                    packet_id: 0,
                    dup: false,
                });
                continue;
            }
            let packet_id = self.allocate_packet_id();
            if persistent {
                ops.push(WriteOp::SetOutboundState {
                    client_id: client_id.to_string(),
                    seq: delivery.seq,
                    state: OutboundState::Published { packet_id },
                });
            }
            self.inflight.push_back(Inflight {
                packet_id,
                delivery: delivery.clone(),
                stage: InflightStage::Published,
                sent: true,
                attempts: 1,
            });
            out.push(Outgoing::Publish {
                delivery,
                packet_id,
                dup: false,
            });
        }
        if !ops.is_empty() {
            drop(store.submit(ops));
        }
        let room = self.room_wanted && self.has_room(limits);
        if room {
            self.room_wanted = false;
        }
        room
    }

    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|f| f.packet_id == id) {
                return id;
            }
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client: the delivery is complete.
    pub fn complete(&mut self, client_id: &str, packet_id: u16, store: &Store) -> bool {
        let Some(i) = self.inflight.iter().position(|f| f.packet_id == packet_id) else {
            return false;
        };
        if let Some(done) = self.inflight.remove(i)
            && self.persistent()
        {
            drop(store.submit(vec![WriteOp::DeleteOutbound {
                client_id: client_id.to_string(),
                seq: done.delivery.seq,
            }]));
        }
        true
    }

    /// PUBREC from the client: move to the release stage. Returns whether the id was known.
    pub fn released(&mut self, client_id: &str, packet_id: u16, store: &Store) -> bool {
        let persistent = self.persistent();
        let Some(entry) = self.inflight.iter_mut().find(|f| f.packet_id == packet_id) else {
            return false;
        };
        entry.stage = InflightStage::Released;
        if persistent {
            drop(store.submit(vec![WriteOp::SetOutboundState {
                client_id: client_id.to_string(),
                seq: entry.delivery.seq,
                state: OutboundState::Released { packet_id },
            }]));
        }
        true
    }

    /// Drops the queued (not yet sent) deliveries `keep` refuses: when a client attaches to
    /// a resumed session, what was queued for an earlier identity (or for nobody, after a
    /// restart) is decided again for the new one (`iot:Receive`). In-flight messages were
    /// sent once already and are sent again.
    pub fn retain_queued(
        &mut self,
        client_id: &str,
        store: &Store,
        mut keep: impl FnMut(&Delivery) -> bool,
    ) {
        let persistent = self.persistent();
        let mut ops = Vec::new();
        let mut removed_bytes = 0;
        self.queue.retain(|d| {
            if keep(d) {
                return true;
            }
            removed_bytes += d.cost();
            if persistent && d.qos != QoS::AtMostOnce {
                ops.push(WriteOp::DeleteOutbound {
                    client_id: client_id.to_string(),
                    seq: d.seq,
                });
            }
            false
        });
        self.queued_bytes -= removed_bytes;
        if !ops.is_empty() {
            drop(store.submit(ops));
        }
    }

    /// A new connection attached: everything in flight is sent again.
    pub fn mark_unsent(&mut self) {
        for entry in &mut self.inflight {
            entry.sent = false;
        }
    }

    /// Restores a loaded outbound record (persistent sessions at start).
    pub fn restore(&mut self, delivery: Delivery, state: OutboundState) {
        self.next_seq = self.next_seq.max(delivery.seq + 1);
        match state {
            OutboundState::Queued => {
                self.queued_bytes += delivery.cost();
                self.queue.push_back(delivery);
            }
            OutboundState::Published { packet_id } | OutboundState::Released { packet_id } => {
                let stage = if matches!(state, OutboundState::Released { .. }) {
                    InflightStage::Released
                } else {
                    InflightStage::Published
                };
                self.inflight.push_back(Inflight {
                    packet_id,
                    delivery,
                    stage,
                    sent: false,
                    attempts: 1,
                });
            }
        }
    }
}
