//! The conformance suite every backend passes: each check is an `async fn` over a [`Harness`]
//! that opens [`Store`]s of one backend. A backend's tests instantiate all of them with
//! `conformance_tests!(harness expression)`.
//!
//! Checks panic on failure (they are tests).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::{
    LoadedSession, OutboundRecord, OutboundState, RegistryRecord, RetainedMessage, SessionRecord,
    ShadowRecord, Store, StoreError, StoredMessage, SubscriptionRecord, WriteOp,
};

/// Opens stores of one backend for the suite.
pub trait Harness: Send + Sync {
    /// Opens the database called `name`: empty at its first open, and the same database at
    /// every later open within this harness (including while another `Store` on it is open).
    fn open<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Store, StoreError>> + Send + 'a>>;
}

/// Expands to one `#[tokio::test]` per check, each with its own harness from `$harness`.
#[allow(unused_macros)]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance::conformance_tests!(@each $harness;
            every_op_round_trips,
            extreme_values_round_trip,
            order_within_a_batch,
            order_across_submissions,
            delete_session_cascades,
            large_batches,
            concurrent_submitters,
            commit_is_visible_to_a_fresh_open,
            dropped_commit_still_writes,
            close_then_submit_is_closed,
            reopen_keeps_data_and_schema,
            registry_round_trips,
            registry_order_within_a_group,
            registry_interleaved_with_other_ops,
            registry_unusual_keys_and_large_documents,
            registry_load_order,
            shadow_round_trips,
            shadow_tombstones,
            shadow_order_within_a_group,
            shadow_list_order_and_paging,
            shadow_reads_see_resolved_commits,
        );
    };
    (@each $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let harness = $harness;
                $crate::conformance::$check(&harness).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use conformance_tests;

// ---- building blocks ----

pub fn message(topic: &str, payload: &[u8]) -> StoredMessage {
    StoredMessage {
        topic: topic.to_owned(),
        payload: Bytes::copy_from_slice(payload),
        qos: 1,
        retain: false,
        properties: Bytes::new(),
        expires_at_ms: None,
    }
}

pub fn outbound(client_id: &str, seq: u64) -> OutboundRecord {
    OutboundRecord {
        client_id: client_id.to_owned(),
        seq,
        state: OutboundState::Queued,
        subscription_ids: Vec::new(),
        message: message(
            &format!("t/{client_id}/{seq}"),
            format!("payload {seq}").as_bytes(),
        ),
    }
}

pub fn session(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.to_owned(),
        protocol: 5,
        expiry_interval: 3600,
        disconnected_at_ms: None,
    }
}

pub fn subscription(client_id: &str, filter: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        client_id: client_id.to_owned(),
        filter: filter.to_owned(),
        options: 1,
        subscription_id: None,
    }
}

pub fn retained(topic: &str, payload: &[u8]) -> RetainedMessage {
    RetainedMessage {
        message: StoredMessage {
            retain: true,
            ..message(topic, payload)
        },
        modified_at_ms: 1_700_000_000_000,
    }
}

pub fn registry(kind: &str, key: &str, document: &[u8]) -> RegistryRecord {
    RegistryRecord {
        kind: kind.to_owned(),
        key: key.to_owned(),
        document: Bytes::copy_from_slice(document),
    }
}

pub fn delete_registry(kind: &str, key: &str) -> WriteOp {
    WriteOp::DeleteRegistry {
        kind: kind.to_owned(),
        key: key.to_owned(),
    }
}

/// A shadow with `document` (`None`: a tombstone), changed at a time derived from `version`.
pub fn shadow(
    thing_name: &str,
    shadow_name: &str,
    version: u64,
    document: Option<&[u8]>,
) -> ShadowRecord {
    ShadowRecord {
        thing_name: thing_name.to_owned(),
        shadow_name: shadow_name.to_owned(),
        version,
        document: document.map(Bytes::copy_from_slice),
        updated_at_ms: 1_700_000_000_000 + version,
    }
}

pub fn delete_shadow(thing_name: &str, shadow_name: &str) -> WriteOp {
    WriteOp::DeleteShadow {
        thing_name: thing_name.to_owned(),
        shadow_name: shadow_name.to_owned(),
    }
}

pub fn loaded(session: SessionRecord) -> LoadedSession {
    LoadedSession {
        session,
        subscriptions: Vec::new(),
        outbound: Vec::new(),
        inbound_qos2: Vec::new(),
    }
}

async fn open(h: &dyn Harness, name: &str) -> Store {
    h.open(name).await.expect("open the store")
}

async fn commit(store: &Store, ops: Vec<WriteOp>) {
    store.submit(ops).await.expect("commit");
}

async fn sessions(store: &Store) -> Vec<LoadedSession> {
    store.load_sessions().await.expect("load sessions")
}

async fn retained_all(store: &Store) -> Vec<RetainedMessage> {
    store.load_retained().await.expect("load retained")
}

async fn registry_all(store: &Store) -> Vec<RegistryRecord> {
    store.load_registry().await.expect("load registry")
}

async fn get_shadow(store: &Store, thing_name: &str, shadow_name: &str) -> Option<ShadowRecord> {
    store
        .get_shadow(thing_name, shadow_name)
        .await
        .expect("get shadow")
}

async fn shadow_names(
    store: &Store,
    thing_name: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    store
        .list_shadow_names(thing_name, after, limit)
        .await
        .expect("list shadow names")
}

/// Every live named shadow of `thing_name`, paging `page` names at a time.
async fn all_shadow_names(store: &Store, thing_name: &str, page: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    loop {
        let next = shadow_names(store, thing_name, names.last().map(String::as_str), page).await;
        assert!(next.len() <= page, "a page of {page}: {next:?}");
        let done = next.len() < page;
        names.extend(next);
        if done {
            return names;
        }
    }
}

/// Closes `store`, reopens the database and loads its registry.
async fn reopen_registry(
    h: &dyn Harness,
    name: &str,
    store: Store,
) -> (Store, Vec<RegistryRecord>) {
    store.close().await.expect("close");
    let store = open(h, name).await;
    let r = registry_all(&store).await;
    (store, r)
}

/// Closes `store`, reopens the database and loads everything.
async fn reopen(
    h: &dyn Harness,
    name: &str,
    store: Store,
) -> (Store, Vec<RetainedMessage>, Vec<LoadedSession>) {
    store.close().await.expect("close");
    let store = open(h, name).await;
    let r = retained_all(&store).await;
    let s = sessions(&store).await;
    (store, r, s)
}

fn find<'a>(sessions: &'a [LoadedSession], client_id: &str) -> Option<&'a LoadedSession> {
    sessions.iter().find(|s| s.session.client_id == client_id)
}

fn seqs(sessions: &[LoadedSession], client_id: &str) -> Vec<u64> {
    find(sessions, client_id)
        .map(|s| s.outbound.iter().map(|o| o.seq).collect())
        .unwrap_or_default()
}

// ---- checks ----

/// Every kind of operation, written, reloaded by the same store and after close + reopen.
pub async fn every_op_round_trips(h: &dyn Harness) {
    let store = open(h, "every_op").await;
    let full = StoredMessage {
        topic: "a/b".into(),
        payload: Bytes::from_static(b"\x00\x01binary\xff"),
        qos: 2,
        retain: true,
        properties: Bytes::from_static(b"\x01\x02props"),
        expires_at_ms: Some(1_800_000_000_000),
    };
    let ret_a = RetainedMessage {
        message: full.clone(),
        modified_at_ms: 1_700_000_000_001,
    };
    let ret_b = retained("b", b"");
    let s1 = SessionRecord {
        client_id: "s1".into(),
        protocol: 5,
        expiry_interval: u32::MAX,
        disconnected_at_ms: None,
    };
    let s2_old = SessionRecord {
        client_id: "s2".into(),
        protocol: 3,
        expiry_interval: 1,
        disconnected_at_ms: None,
    };
    let s2 = SessionRecord {
        client_id: "s2".into(),
        protocol: 4,
        expiry_interval: 60,
        disconnected_at_ms: Some(1_700_000_000_123),
    };
    let sub_a = SubscriptionRecord {
        client_id: "s1".into(),
        filter: "a/+".into(),
        options: 0x2e,
        subscription_id: Some(7),
    };
    let sub_b = SubscriptionRecord {
        client_id: "s1".into(),
        filter: "b/#".into(),
        options: 1,
        subscription_id: None,
    };
    let sub_a_new = SubscriptionRecord {
        options: 0x02,
        subscription_id: Some(268_435_455),
        ..sub_a.clone()
    };
    let o1 = outbound("s1", 1);
    let o2 = OutboundRecord {
        state: OutboundState::Published { packet_id: 10 },
        subscription_ids: vec![1, 2],
        message: full.clone(),
        ..outbound("s1", 2)
    };
    let o3 = OutboundRecord {
        state: OutboundState::Released { packet_id: 11 },
        subscription_ids: vec![3],
        ..outbound("s1", 3)
    };
    let o5 = outbound("s1", 5);

    commit(
        &store,
        vec![
            WriteOp::PutRetained(ret_a.clone()),
            WriteOp::PutRetained(ret_b.clone()),
            WriteOp::PutRetained(retained("c", b"gone")),
            WriteOp::PutSession(s1.clone()),
            WriteOp::PutSession(s2_old),
            WriteOp::PutRegistry(registry("thing", "t1", b"{}")),
            WriteOp::PutRegistry(registry("thing", "gone", b"{}")),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            WriteOp::DeleteRetained { topic: "c".into() },
            delete_registry("thing", "gone"),
            WriteOp::PutRegistry(registry("thing", "t1", b"{\"v\":2}")),
            WriteOp::PutSession(s2.clone()),
            WriteOp::PutSubscription(sub_a.clone()),
            WriteOp::PutSubscription(sub_b.clone()),
            WriteOp::PutSubscription(subscription("s1", "c")),
            WriteOp::DeleteSubscription {
                client_id: "s1".into(),
                filter: "c".into(),
            },
            WriteOp::PutSubscription(sub_a_new.clone()),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            WriteOp::PutOutbound(o1.clone()),
            WriteOp::PutOutbound(o2.clone()),
            WriteOp::PutOutbound(o3.clone()),
            WriteOp::PutOutbound(outbound("s1", 4)),
            WriteOp::PutOutbound(o5.clone()),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            WriteOp::DeleteOutbound {
                client_id: "s1".into(),
                seq: 4,
            },
            WriteOp::SetOutboundState {
                client_id: "s1".into(),
                seq: 5,
                state: OutboundState::Published { packet_id: 12 },
            },
            WriteOp::SetOutboundState {
                client_id: "s1".into(),
                seq: 1,
                state: OutboundState::Released { packet_id: 13 },
            },
            WriteOp::SetOutboundState {
                client_id: "s1".into(),
                seq: 1,
                state: OutboundState::Queued,
            },
            // No such message: nothing happens.
            WriteOp::SetOutboundState {
                client_id: "s1".into(),
                seq: 99,
                state: OutboundState::Queued,
            },
            WriteOp::PutInboundQos2 {
                client_id: "s1".into(),
                packet_id: 5,
            },
            WriteOp::PutInboundQos2 {
                client_id: "s1".into(),
                packet_id: 65535,
            },
            WriteOp::PutInboundQos2 {
                client_id: "s1".into(),
                packet_id: 5,
            },
            WriteOp::PutInboundQos2 {
                client_id: "s1".into(),
                packet_id: 7,
            },
            WriteOp::DeleteInboundQos2 {
                client_id: "s1".into(),
                packet_id: 7,
            },
        ],
    )
    .await;

    let mut retained_expected = vec![ret_a, ret_b];
    retained_expected.sort_by(|a, b| a.message.topic.cmp(&b.message.topic));
    let sessions_expected = vec![
        LoadedSession {
            session: s1,
            subscriptions: vec![sub_a_new, sub_b],
            outbound: vec![
                o1,
                o2,
                o3,
                OutboundRecord {
                    state: OutboundState::Published { packet_id: 12 },
                    ..o5
                },
            ],
            inbound_qos2: vec![5, 65535],
        },
        loaded(s2),
    ];

    let mut got = retained_all(&store).await;
    got.sort_by(|a, b| a.message.topic.cmp(&b.message.topic));
    assert_eq!(got, retained_expected, "retained, same store");
    assert_eq!(
        sessions(&store).await,
        sessions_expected,
        "sessions, same store"
    );

    let (store, mut got_retained, got_sessions) = reopen(h, "every_op", store).await;
    got_retained.sort_by(|a, b| a.message.topic.cmp(&b.message.topic));
    assert_eq!(got_retained, retained_expected, "retained after reopen");
    assert_eq!(got_sessions, sessions_expected, "sessions after reopen");
    assert_eq!(
        registry_all(&store).await,
        vec![registry("thing", "t1", b"{\"v\":2}")],
        "registry after reopen"
    );
    store.close().await.expect("close");
}

/// Limits of every field survive the round trip.
pub async fn extreme_values_round_trip(h: &dyn Harness) {
    let store = open(h, "extreme").await;
    let big = vec![0xa5u8; 256 * 1024];
    let msg = StoredMessage {
        topic: "ünïcödé/💡/".repeat(10),
        payload: Bytes::from(big),
        qos: 0,
        retain: false,
        properties: Bytes::from(vec![0u8; 1000]),
        expires_at_ms: Some(u64::MAX),
    };
    let client = "c".repeat(128);
    let s = SessionRecord {
        client_id: client.clone(),
        protocol: 3,
        expiry_interval: 0,
        disconnected_at_ms: Some(u64::MAX),
    };
    let records: Vec<OutboundRecord> = [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX]
        .into_iter()
        .map(|seq| OutboundRecord {
            client_id: client.clone(),
            seq,
            state: OutboundState::Published { packet_id: 65535 },
            subscription_ids: vec![1, 268_435_455, u32::MAX],
            message: msg.clone(),
        })
        .collect();
    let ret = RetainedMessage {
        message: msg.clone(),
        modified_at_ms: u64::MAX,
    };
    let mut ops = vec![
        WriteOp::PutSession(s.clone()),
        WriteOp::PutRetained(ret.clone()),
    ];
    ops.extend(records.iter().cloned().map(WriteOp::PutOutbound));
    ops.push(WriteOp::PutInboundQos2 {
        client_id: client.clone(),
        packet_id: 0,
    });
    ops.push(WriteOp::PutSubscription(SubscriptionRecord {
        client_id: client.clone(),
        filter: "#".into(),
        options: u8::MAX,
        subscription_id: Some(u32::MAX),
    }));
    commit(&store, ops).await;
    let (store, r, got) = reopen(h, "extreme", store).await;
    assert_eq!(r, vec![ret]);
    let expected = LoadedSession {
        session: s,
        subscriptions: vec![SubscriptionRecord {
            client_id: client.clone(),
            filter: "#".into(),
            options: u8::MAX,
            subscription_id: Some(u32::MAX),
        }],
        outbound: records,
        inbound_qos2: vec![0],
    };
    assert_eq!(got, vec![expected]);
    store.close().await.expect("close");
}

/// Operations of one submission take effect in their order.
pub async fn order_within_a_batch(h: &dyn Harness) {
    let store = open(h, "order_batch").await;
    commit(
        &store,
        vec![
            WriteOp::PutSession(session("c")),
            // put then delete: absent
            WriteOp::PutRetained(retained("gone", b"x")),
            WriteOp::DeleteRetained {
                topic: "gone".into(),
            },
            WriteOp::PutOutbound(outbound("c", 1)),
            WriteOp::DeleteOutbound {
                client_id: "c".into(),
                seq: 1,
            },
            WriteOp::PutSubscription(subscription("c", "gone")),
            WriteOp::DeleteSubscription {
                client_id: "c".into(),
                filter: "gone".into(),
            },
            WriteOp::PutInboundQos2 {
                client_id: "c".into(),
                packet_id: 1,
            },
            WriteOp::DeleteInboundQos2 {
                client_id: "c".into(),
                packet_id: 1,
            },
            // delete then put: present
            WriteOp::DeleteRetained {
                topic: "here".into(),
            },
            WriteOp::PutRetained(retained("here", b"y")),
            WriteOp::DeleteOutbound {
                client_id: "c".into(),
                seq: 2,
            },
            WriteOp::PutOutbound(outbound("c", 2)),
            WriteOp::DeleteSubscription {
                client_id: "c".into(),
                filter: "here".into(),
            },
            WriteOp::PutSubscription(subscription("c", "here")),
            WriteOp::DeleteInboundQos2 {
                client_id: "c".into(),
                packet_id: 2,
            },
            WriteOp::PutInboundQos2 {
                client_id: "c".into(),
                packet_id: 2,
            },
            // the last put of a key wins, also inside a run of puts
            WriteOp::PutOutbound(outbound("c", 3)),
            WriteOp::PutOutbound(outbound("c", 4)),
            WriteOp::PutOutbound(OutboundRecord {
                message: message("first", b"1"),
                ..outbound("c", 3)
            }),
            WriteOp::PutOutbound(OutboundRecord {
                message: message("second", b"2"),
                ..outbound("c", 3)
            }),
            WriteOp::PutRetained(retained("twice", b"1")),
            WriteOp::PutRetained(retained("twice", b"2")),
            // state change right after the put, then delete and put back
            WriteOp::PutOutbound(outbound("c", 5)),
            WriteOp::SetOutboundState {
                client_id: "c".into(),
                seq: 5,
                state: OutboundState::Published { packet_id: 9 },
            },
            WriteOp::DeleteOutbound {
                client_id: "c".into(),
                seq: 4,
            },
            WriteOp::PutOutbound(OutboundRecord {
                message: message("back", b"4"),
                ..outbound("c", 4)
            }),
            // delete session, then a fresh session with the same id
            WriteOp::PutSession(session("d")),
            WriteOp::PutOutbound(outbound("d", 1)),
            WriteOp::DeleteSession {
                client_id: "d".into(),
            },
            WriteOp::PutSession(session("d")),
            WriteOp::PutOutbound(outbound("d", 2)),
        ],
    )
    .await;
    let s = check_order_within_a_batch(&store, "same store").await;
    let (store, _, reloaded) = reopen(h, "order_batch", store).await;
    assert_eq!(reloaded, s, "after reopen");
    check_order_within_a_batch(&store, "reopened").await;
    store.close().await.expect("close");
}

async fn check_order_within_a_batch(store: &Store, pass: &str) -> Vec<LoadedSession> {
    let r = retained_all(store).await;
    let topics: Vec<(&str, &[u8])> = r
        .iter()
        .map(|r| (r.message.topic.as_str(), &r.message.payload[..]))
        .collect();
    assert_eq!(
        topics,
        vec![("here", &b"y"[..]), ("twice", &b"2"[..])],
        "{pass}"
    );
    let s = sessions(store).await;
    let c = find(&s, "c").expect("session c");
    assert_eq!(seqs(&s, "c"), vec![2, 3, 4, 5], "{pass}");
    assert_eq!(c.outbound[1].message.topic, "second", "{pass}");
    assert_eq!(c.outbound[2].message.topic, "back", "{pass}");
    assert_eq!(
        c.outbound[3].state,
        OutboundState::Published { packet_id: 9 },
        "{pass}"
    );
    assert_eq!(
        c.subscriptions
            .iter()
            .map(|s| s.filter.as_str())
            .collect::<Vec<_>>(),
        vec!["here"],
        "{pass}"
    );
    assert_eq!(c.inbound_qos2, vec![2], "{pass}");
    assert_eq!(seqs(&s, "d"), vec![2], "{pass}");
    s
}

/// Submissions take effect in submission order even when nobody waits in between.
pub async fn order_across_submissions(h: &dyn Harness) {
    let store = open(h, "order_subs").await;
    let mut commits = Vec::new();
    commits.push(store.submit(vec![WriteOp::PutSession(session("c"))]));
    for i in 0..200u64 {
        commits.push(store.submit(vec![WriteOp::PutOutbound(outbound("c", i))]));
        if i % 2 == 0 {
            commits.push(store.submit(vec![WriteOp::DeleteOutbound {
                client_id: "c".into(),
                seq: i,
            }]));
        }
        commits.push(store.submit(vec![WriteOp::PutRetained(retained("r", &i.to_be_bytes()))]));
    }
    commits.push(store.submit(vec![WriteOp::DeleteRetained { topic: "r".into() }]));
    commits.push(store.submit(vec![WriteOp::PutRetained(retained("r", b"last"))]));
    for c in commits {
        c.await.expect("commit");
    }
    let (store, r, s) = reopen(h, "order_subs", store).await;
    assert_eq!(r.len(), 1);
    assert_eq!(&r[0].message.payload[..], b"last");
    assert_eq!(
        seqs(&s, "c"),
        (0..200).filter(|i| i % 2 == 1).collect::<Vec<_>>()
    );
    store.close().await.expect("close");
}

/// `DeleteSession` removes the session and every row of it, and nothing of other sessions.
pub async fn delete_session_cascades(h: &dyn Harness) {
    let store = open(h, "cascade").await;
    let mut ops = Vec::new();
    for c in ["a", "b"] {
        ops.push(WriteOp::PutSession(session(c)));
        ops.push(WriteOp::PutSubscription(subscription(c, "x/#")));
        ops.push(WriteOp::PutSubscription(subscription(c, "y")));
        for seq in 0..100 {
            ops.push(WriteOp::PutOutbound(outbound(c, seq)));
        }
        ops.push(WriteOp::PutInboundQos2 {
            client_id: c.into(),
            packet_id: 3,
        });
    }
    commit(&store, ops).await;
    let before = sessions(&store).await;
    commit(
        &store,
        vec![
            WriteOp::DeleteSession {
                client_id: "a".into(),
            },
            WriteOp::DeleteSession {
                client_id: "nobody".into(),
            },
        ],
    )
    .await;
    let after = sessions(&store).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0], before[1]);
    // A new session with the same client id starts empty.
    commit(&store, vec![WriteOp::PutSession(session("a"))]).await;
    let (store, _, after) = reopen(h, "cascade", store).await;
    assert_eq!(after, vec![loaded(session("a")), before[1].clone()]);
    store.close().await.expect("close");
}

/// Submissions far larger than one statement's batch, with mixed runs.
pub async fn large_batches(h: &dyn Harness) {
    let store = open(h, "large").await;
    let clients = ["x", "y", "z"];
    let n = 4_001u64;
    let mut ops: Vec<WriteOp> = clients
        .iter()
        .map(|c| WriteOp::PutSession(session(c)))
        .collect();
    for seq in 0..n {
        for c in clients {
            ops.push(WriteOp::PutOutbound(outbound(c, seq)));
        }
    }
    commit(&store, ops).await;
    let mut ops = Vec::new();
    for seq in (0..n).filter(|s| s % 2 == 0) {
        for c in clients {
            ops.push(WriteOp::DeleteOutbound {
                client_id: c.into(),
                seq,
            });
        }
    }
    for seq in (0..n).filter(|s| s % 3 == 1) {
        ops.push(WriteOp::SetOutboundState {
            client_id: "y".into(),
            seq,
            state: OutboundState::Published {
                packet_id: (seq % 65535) as u16 + 1,
            },
        });
    }
    // Alternating single puts and deletes (runs of length one).
    for seq in n..n + 301 {
        ops.push(WriteOp::PutOutbound(outbound("z", seq)));
        ops.push(WriteOp::DeleteOutbound {
            client_id: "z".into(),
            seq: seq - 1,
        });
    }
    commit(&store, ops).await;
    let (store, _, s) = reopen(h, "large", store).await;
    let odd: Vec<u64> = (0..n).filter(|s| s % 2 == 1).collect();
    assert_eq!(seqs(&s, "x"), odd);
    assert_eq!(seqs(&s, "y"), odd);
    // Of the alternating tail only the last put survives; n - 1 is even, so already gone.
    let mut z = odd.clone();
    z.push(n + 300);
    assert_eq!(seqs(&s, "z"), z);
    let y = find(&s, "y").expect("y");
    for o in &y.outbound {
        let expected = if o.seq % 3 == 1 {
            OutboundState::Published {
                packet_id: (o.seq % 65535) as u16 + 1,
            }
        } else {
            OutboundState::Queued
        };
        assert_eq!(o.state, expected, "seq {}", o.seq);
        assert_eq!(o.message, outbound("y", o.seq).message);
    }
    store.close().await.expect("close");
}

/// Many tasks submitting and awaiting at once, like publishers waiting for their PUBACK.
pub async fn concurrent_submitters(h: &dyn Harness) {
    let store = open(h, "concurrent").await;
    let tasks = 50u64;
    let per_task = 100u64;
    commit(
        &store,
        (0..tasks)
            .map(|t| WriteOp::PutSession(session(&format!("c{t}"))))
            .collect(),
    )
    .await;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let client = format!("c{t}");
                for seq in 0..per_task {
                    let mut ops = vec![WriteOp::PutOutbound(outbound(&client, seq))];
                    if seq % 10 == 9 {
                        ops.push(WriteOp::DeleteOutbound {
                            client_id: client.clone(),
                            seq: seq - 9,
                        });
                    }
                    store.submit(ops).await.expect("commit");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let stats = store.stats();
    assert!(stats.ops_committed >= tasks * per_task);
    let (store, _, s) = reopen(h, "concurrent", store).await;
    assert_eq!(s.len() as u64, tasks);
    for t in 0..tasks {
        let expected: Vec<u64> = (0..per_task).filter(|s| s % 10 != 0).collect();
        assert_eq!(seqs(&s, &format!("c{t}")), expected, "client c{t}");
    }
    store.close().await.expect("close");
}

/// When a commit resolves, a store opened afterwards on the same database sees the data,
/// while the first store is still open.
pub async fn commit_is_visible_to_a_fresh_open(h: &dyn Harness) {
    let store = open(h, "visible").await;
    commit(&store, vec![WriteOp::PutSession(session("v"))]).await;
    for seq in 0..5u64 {
        commit(
            &store,
            vec![
                WriteOp::PutOutbound(outbound("v", seq)),
                WriteOp::PutRetained(retained("v", &seq.to_be_bytes())),
            ],
        )
        .await;
        let other = open(h, "visible").await;
        assert_eq!(
            seqs(&sessions(&other).await, "v"),
            (0..=seq).collect::<Vec<_>>()
        );
        let r = retained_all(&other).await;
        assert_eq!(&r[0].message.payload[..], &seq.to_be_bytes());
        other.close().await.expect("close other");
    }
    store.close().await.expect("close");
}

/// A dropped `Commit` does not cancel its write; `flush` waits for it.
pub async fn dropped_commit_still_writes(h: &dyn Harness) {
    let store = open(h, "dropped").await;
    drop(store.submit(vec![WriteOp::PutSession(session("d"))]));
    for seq in 0..100 {
        drop(store.submit(vec![WriteOp::PutOutbound(outbound("d", seq))]));
    }
    store.flush().await.expect("flush");
    let other = open(h, "dropped").await;
    assert_eq!(
        seqs(&sessions(&other).await, "d"),
        (0..100).collect::<Vec<_>>()
    );
    other.close().await.expect("close other");
    store.close().await.expect("close");
}

/// `close` writes what was submitted before it; afterwards submissions fail with `Closed`.
pub async fn close_then_submit_is_closed(h: &dyn Harness) {
    let store = open(h, "closed").await;
    let clone = store.clone();
    let before: Vec<_> = (0..50)
        .map(|i| store.submit(vec![WriteOp::PutRetained(retained(&format!("r{i}"), b"x"))]))
        .collect();
    store.close().await.expect("close");
    for c in before {
        c.await.expect("submitted before close is committed");
    }
    assert!(matches!(
        clone
            .submit(vec![WriteOp::DeleteRetained { topic: "r0".into() }])
            .await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.submit(Vec::new()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(store.flush().await, Err(StoreError::Closed)));
    store.close().await.expect("closing twice is fine");
    let store = open(h, "closed").await;
    assert_eq!(retained_all(&store).await.len(), 50);
    store.close().await.expect("close");
}

/// Reopening an existing database keeps its data and does not re-apply migrations.
pub async fn reopen_keeps_data_and_schema(h: &dyn Harness) {
    let store = open(h, "reopen").await;
    commit(&store, vec![WriteOp::PutRetained(retained("keep", b"1"))]).await;
    let mut store = store;
    for _ in 0..3 {
        let (again, r, s) = reopen(h, "reopen", store).await;
        assert_eq!(r, vec![retained("keep", b"1")]);
        assert!(s.is_empty());
        store = again;
    }
    // An empty submission and a flush on an idle store resolve.
    store.submit(Vec::new()).await.expect("empty submit");
    store.flush().await.expect("flush");
    store.close().await.expect("close");
}

/// Registry records are created, replaced and deleted, and stay so through reopens; deleting a
/// record that does not exist is not an error.
pub async fn registry_round_trips(h: &dyn Harness) {
    let store = open(h, "registry").await;
    assert!(
        registry_all(&store).await.is_empty(),
        "a new store is empty"
    );
    let thing = registry(
        "thing",
        "sensor-1",
        br#"{"thingName":"sensor-1","version":1}"#,
    );
    let cert = registry("certificate", "ab12", br#"{"status":"ACTIVE"}"#);
    let group = registry("thing_group", "floor-1", br#"{"parent":null}"#);
    commit(
        &store,
        vec![
            WriteOp::PutRegistry(thing.clone()),
            WriteOp::PutRegistry(cert.clone()),
            WriteOp::PutRegistry(group.clone()),
        ],
    )
    .await;
    // "thing" < "thing_group": a kind is compared whole, before the key.
    let expected = vec![cert.clone(), thing.clone(), group.clone()];
    assert_eq!(registry_all(&store).await, expected, "same store");
    let (store, got) = reopen_registry(h, "registry", store).await;
    assert_eq!(got, expected, "after reopen");

    let thing_v2 = registry(
        "thing",
        "sensor-1",
        br#"{"thingName":"sensor-1","version":2}"#,
    );
    commit(
        &store,
        vec![
            WriteOp::PutRegistry(thing_v2.clone()),
            delete_registry("certificate", "ab12"),
            // None of these exist: nothing happens, and the group still commits.
            delete_registry("certificate", "ab12"),
            delete_registry("certificate", "missing"),
            delete_registry("no such kind", "sensor-1"),
            // Same key, another kind: a different record.
            WriteOp::PutRegistry(registry("thing_type", "sensor-1", b"{}")),
        ],
    )
    .await;
    commit(&store, vec![delete_registry("thing", "nobody")]).await;
    let expected = vec![
        thing_v2.clone(),
        group.clone(),
        registry("thing_type", "sensor-1", b"{}"),
    ];
    assert_eq!(registry_all(&store).await, expected, "same store, changed");
    let (store, got) = reopen_registry(h, "registry", store).await;
    assert_eq!(got, expected, "changed, after reopen");

    // Delete everything, then bring one back.
    commit(
        &store,
        vec![
            delete_registry("thing", "sensor-1"),
            delete_registry("thing_group", "floor-1"),
            delete_registry("thing_type", "sensor-1"),
        ],
    )
    .await;
    let (store, got) = reopen_registry(h, "registry", store).await;
    assert!(got.is_empty(), "all deleted: {got:?}");
    commit(&store, vec![WriteOp::PutRegistry(cert.clone())]).await;
    let (store, got) = reopen_registry(h, "registry", store).await;
    assert_eq!(got, vec![cert]);
    // Sessions and retained messages are untouched by registry records.
    assert!(retained_all(&store).await.is_empty());
    assert!(sessions(&store).await.is_empty());
    store.close().await.expect("close");
}

/// Registry operations of one group take effect in their order, per key.
pub async fn registry_order_within_a_group(h: &dyn Harness) {
    let store = open(h, "registry_order").await;
    commit(
        &store,
        vec![
            WriteOp::PutRegistry(registry("k", "existing", b"old")),
            WriteOp::PutRegistry(registry("k", "existing2", b"old")),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            // put then delete: absent
            WriteOp::PutRegistry(registry("k", "put-delete", b"1")),
            delete_registry("k", "put-delete"),
            // delete then put: present
            delete_registry("k", "delete-put"),
            WriteOp::PutRegistry(registry("k", "delete-put", b"2")),
            // the last put wins
            WriteOp::PutRegistry(registry("k", "twice", b"first")),
            WriteOp::PutRegistry(registry("k", "twice", b"second")),
            // put, delete, put: the last put
            WriteOp::PutRegistry(registry("k", "back", b"a")),
            delete_registry("k", "back"),
            WriteOp::PutRegistry(registry("k", "back", b"b")),
            // an existing record replaced then deleted; another deleted then put back
            WriteOp::PutRegistry(registry("k", "existing", b"new")),
            delete_registry("k", "existing"),
            delete_registry("k", "existing2"),
            WriteOp::PutRegistry(registry("k", "existing2", b"new")),
        ],
    )
    .await;
    // The same across submissions nobody waits between (most likely one group).
    let commits = vec![
        store.submit(vec![WriteOp::PutRegistry(registry(
            "s",
            "put-delete",
            b"1",
        ))]),
        store.submit(vec![delete_registry("s", "put-delete")]),
        store.submit(vec![delete_registry("s", "delete-put")]),
        store.submit(vec![WriteOp::PutRegistry(registry(
            "s",
            "delete-put",
            b"2",
        ))]),
        store.submit(vec![WriteOp::PutRegistry(registry("s", "twice", b"first"))]),
        store.submit(vec![WriteOp::PutRegistry(registry(
            "s", "twice", b"second",
        ))]),
    ];
    for c in commits {
        c.await.expect("commit");
    }
    let expected = vec![
        registry("k", "back", b"b"),
        registry("k", "delete-put", b"2"),
        registry("k", "existing2", b"new"),
        registry("k", "twice", b"second"),
        registry("s", "delete-put", b"2"),
        registry("s", "twice", b"second"),
    ];
    assert_eq!(registry_all(&store).await, expected, "same store");
    let (store, got) = reopen_registry(h, "registry_order", store).await;
    assert_eq!(got, expected, "after reopen");
    store.close().await.expect("close");
}

/// Registry records of many kinds, interleaved with session, outbound and retained operations
/// in one group (including the `DeleteSession` barrier of the planner).
pub async fn registry_interleaved_with_other_ops(h: &dyn Harness) {
    let store = open(h, "registry_mixed").await;
    let kinds = [
        "thing",
        "thing_type",
        "thing_group",
        "group_membership",
        "certificate",
        "ca_certificate",
        "principal_attachment",
        "registration_code",
        "crl",
    ];
    let mut ops = vec![
        WriteOp::PutSession(session("c")),
        WriteOp::PutSession(session("gone")),
    ];
    let mut expected = Vec::new();
    for i in 0..60u64 {
        let kind = kinds[i as usize % kinds.len()];
        let key = format!("key-{i}");
        let record = registry(kind, &key, format!("{{\"i\":{i}}}").as_bytes());
        ops.push(WriteOp::PutRegistry(record.clone()));
        ops.push(WriteOp::PutOutbound(outbound("c", i)));
        ops.push(WriteOp::PutOutbound(outbound("gone", i)));
        match i % 4 {
            0 => ops.push(WriteOp::PutRetained(retained(&format!("r/{i}"), b"x"))),
            1 => ops.push(WriteOp::DeleteOutbound {
                client_id: "c".into(),
                seq: i - 1,
            }),
            2 => ops.push(WriteOp::PutSubscription(subscription("c", &key))),
            _ => ops.push(delete_registry(kind, &key)),
        }
        if i % 4 != 3 {
            expected.push(record);
        }
        if i == 30 {
            ops.push(WriteOp::DeleteSession {
                client_id: "gone".into(),
            });
            // A registry record with the session's name is not the session's.
            ops.push(WriteOp::PutRegistry(registry("thing", "gone", b"{}")));
            expected.push(registry("thing", "gone", b"{}"));
        }
    }
    commit(&store, ops).await;
    expected.sort_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));

    let check = |r: Vec<RegistryRecord>, s: Vec<LoadedSession>, ret: Vec<RetainedMessage>| {
        assert_eq!(r, expected);
        let outbound_c: Vec<u64> = (0..60).filter(|i| i % 4 != 0).collect();
        assert_eq!(seqs(&s, "c"), outbound_c);
        // Rows of "gone" written after its deletion stay without a session: not loaded.
        assert!(find(&s, "gone").is_none());
        assert_eq!(
            find(&s, "c").map(|c| c.subscriptions.len()),
            Some(15),
            "subscriptions of c"
        );
        assert_eq!(ret.len(), 15);
    };
    check(
        registry_all(&store).await,
        sessions(&store).await,
        retained_all(&store).await,
    );
    let (store, ret, s) = reopen(h, "registry_mixed", store).await;
    check(registry_all(&store).await, s, ret);
    store.close().await.expect("close");
}

/// Keys and kinds of any text (unicode, '/', newlines, empty), documents of any bytes and
/// size.
pub async fn registry_unusual_keys_and_large_documents(h: &dyn Harness) {
    let store = open(h, "registry_keys").await;
    let large: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let records = vec![
        registry("thing", "", b"empty key"),
        registry("thing", "ünïcödé-💡-名前", b"unicode"),
        registry("thing", "a/b/c", b"slashes"),
        registry("thing", "line\nbreak\r\n", b"newlines"),
        registry("thing", "quote'\"; DROP TABLE registry; --", b"sql"),
        registry("thing", " ", b"space"),
        registry("thing", &"k".repeat(4096), b"long key"),
        registry(&"x".repeat(64), "longest kind", b""),
        registry("", "empty kind", b"\x00\xff binary, not JSON"),
        registry("blob", "large", &large),
    ];
    commit(
        &store,
        records.iter().cloned().map(WriteOp::PutRegistry).collect(),
    )
    .await;
    let mut expected = records.clone();
    expected.sort_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
    assert_eq!(registry_all(&store).await, expected, "same store");
    let (store, got) = reopen_registry(h, "registry_keys", store).await;
    assert_eq!(got, expected, "after reopen");
    let large_doc = got
        .iter()
        .find(|r| r.key == "large")
        .map(|r| r.document.len());
    assert_eq!(large_doc, Some(256 * 1024));

    // Each is addressed by exactly its key.
    commit(
        &store,
        records
            .iter()
            .filter(|r| r.kind == "thing")
            .map(|r| delete_registry(&r.kind, &r.key))
            .collect(),
    )
    .await;
    let (store, got) = reopen_registry(h, "registry_keys", store).await;
    let left: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.kind.as_str(), r.key.as_str()))
        .collect();
    assert_eq!(
        left,
        vec![
            ("", "empty kind"),
            ("blob", "large"),
            (
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "longest kind"
            ),
        ]
    );
    store.close().await.expect("close");
}

/// `load_registry` orders by kind, then key, comparing bytes (not by locale, not by the
/// concatenation of kind and key), whatever the order of writing.
pub async fn registry_load_order(h: &dyn Harness) {
    let store = open(h, "registry_load_order").await;
    let order: &[(&str, &str)] = &[
        ("", "z"),
        ("A", "b"),
        ("B", "a"),
        ("a", ""),
        ("a", "\n"),
        ("a", " "),
        ("a", "-"),
        ("a", "/"),
        ("a", "10"),
        ("a", "9"),
        ("a", "B"),
        ("a", "Z"),
        ("a", "_"),
        ("a", "a"),
        ("a", "a b"),
        ("a", "a-b"),
        ("a", "a/b"),
        ("a", "ab"),
        ("a", "b"),
        ("a", "z"),
        ("a", "é"),
        ("a", "💡"),
        ("ab", "a"),
        ("b", "a"),
        ("thing", "x"),
        ("é", "a"),
    ];
    // Written in a scrambled order, over several groups.
    let mut scrambled: Vec<usize> = (0..order.len()).collect();
    scrambled.sort_by_key(|&i| (i * 7 + 3) % order.len());
    for chunk in scrambled.chunks(5) {
        commit(
            &store,
            chunk
                .iter()
                .map(|&i| {
                    let (kind, key) = order[i];
                    WriteOp::PutRegistry(registry(kind, key, i.to_string().as_bytes()))
                })
                .collect(),
        )
        .await;
    }
    let keys = |records: &[RegistryRecord]| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| (r.kind.clone(), r.key.clone()))
            .collect()
    };
    let expected: Vec<(String, String)> = order
        .iter()
        .map(|&(kind, key)| (kind.to_owned(), key.to_owned()))
        .collect();
    let got = registry_all(&store).await;
    assert_eq!(keys(&got), expected, "same store");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(&r.document[..], i.to_string().as_bytes(), "{r:?}");
    }
    let (store, got) = reopen_registry(h, "registry_load_order", store).await;
    assert_eq!(keys(&got), expected, "after reopen");
    store.close().await.expect("close");
}

/// Shadows, classic and named, are created, read back exactly, replaced and removed, and stay
/// so through reopens; they are keyed by thing and name, and touch no other kind of state.
pub async fn shadow_round_trips(h: &dyn Harness) {
    let store = open(h, "shadow").await;
    assert_eq!(
        get_shadow(&store, "sensor-1", "").await,
        None,
        "a new store"
    );
    assert!(shadow_names(&store, "sensor-1", None, 100).await.is_empty());

    let large: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let classic = shadow(
        "sensor-1",
        "",
        1,
        Some(br#"{"state":{"reported":{"on":true}}}"#),
    );
    let config = shadow("sensor-1", "config", 1, Some(b"{}"));
    // A live shadow whose document is empty is not a tombstone.
    let empty = shadow("sensor-1", "empty", 3, Some(b""));
    let extreme = ShadowRecord {
        version: u64::MAX,
        updated_at_ms: u64::MAX,
        ..shadow("sensor-2", "config", 0, Some(&large))
    };
    let prefix_thing = shadow("sensor-10", "config", 0, Some(b"\x00\xff binary"));
    let all = [&classic, &config, &empty, &extreme, &prefix_thing];
    commit(
        &store,
        all.iter().map(|&r| WriteOp::PutShadow(r.clone())).collect(),
    )
    .await;

    let check = |store: Store, pass: &'static str| async move {
        for r in all {
            assert_eq!(
                get_shadow(&store, &r.thing_name, &r.shadow_name)
                    .await
                    .as_ref(),
                Some(r),
                "{pass}"
            );
        }
        for (thing, name) in [
            ("sensor-1", "missing"),
            ("sensor-3", ""),
            ("Sensor-1", ""),
            ("sensor-1", "Config"),
            ("sensor-2", ""),
            ("sensor-", "config"),
        ] {
            assert_eq!(get_shadow(&store, thing, name).await, None, "{pass}");
        }
        assert_eq!(
            shadow_names(&store, "sensor-1", None, 100).await,
            vec!["config", "empty"],
            "{pass}"
        );
        assert_eq!(
            shadow_names(&store, "sensor-2", None, 100).await,
            vec!["config"],
            "{pass}"
        );
        assert!(
            shadow_names(&store, "sensor-3", None, 100).await.is_empty(),
            "{pass}"
        );
        // Shadows are in none of the loads of other state.
        assert!(registry_all(&store).await.is_empty(), "{pass}");
        assert!(retained_all(&store).await.is_empty(), "{pass}");
        assert!(sessions(&store).await.is_empty(), "{pass}");
        store
    };
    let store = check(store, "same store").await;
    let (store, _) = reopen_registry(h, "shadow", store).await;
    let store = check(store, "after reopen").await;

    // Replace; remove; removing what does not exist is not an error.
    let classic_v2 = shadow("sensor-1", "", 2, Some(br#"{"state":{}}"#));
    commit(
        &store,
        vec![
            WriteOp::PutShadow(classic_v2.clone()),
            delete_shadow("sensor-1", "config"),
            delete_shadow("sensor-1", "config"),
            delete_shadow("nobody", ""),
            delete_shadow("sensor-1", "missing"),
        ],
    )
    .await;
    commit(&store, vec![delete_shadow("sensor-9", "x")]).await;
    for _ in 0..2 {
        assert_eq!(
            get_shadow(&store, "sensor-1", "").await,
            Some(classic_v2.clone())
        );
        assert_eq!(get_shadow(&store, "sensor-1", "config").await, None);
        assert_eq!(
            get_shadow(&store, "sensor-2", "config").await,
            Some(extreme.clone())
        );
        assert_eq!(
            shadow_names(&store, "sensor-1", None, 100).await,
            vec!["empty"]
        );
    }
    let (store, _) = reopen_registry(h, "shadow", store).await;
    assert_eq!(get_shadow(&store, "sensor-1", "").await, Some(classic_v2));
    assert_eq!(get_shadow(&store, "sensor-1", "config").await, None);
    assert_eq!(
        shadow_names(&store, "sensor-1", None, 100).await,
        vec!["empty"]
    );
    store.close().await.expect("close");
}

/// A shadow put with no document is a tombstone: `get_shadow` returns it with its version and
/// time, `list_shadow_names` leaves it out; a put brings the shadow back, `DeleteShadow`
/// removes the tombstone.
pub async fn shadow_tombstones(h: &dyn Harness) {
    let store = open(h, "shadow_tombstones").await;
    commit(
        &store,
        vec![
            WriteOp::PutShadow(shadow("t", "", 3, Some(b"{}"))),
            WriteOp::PutShadow(shadow("t", "a", 3, Some(b"{}"))),
            WriteOp::PutShadow(shadow("t", "b", 1, Some(b"{}"))),
            WriteOp::PutShadow(shadow("t", "c", 9, Some(b"{}"))),
        ],
    )
    .await;
    let deleted_a = shadow("t", "a", 4, None);
    let deleted_classic = shadow("t", "", 4, None);
    // Never existed: a tombstone may also be written for a new key.
    let deleted_new = shadow("t", "never", 1, None);
    commit(
        &store,
        vec![
            WriteOp::PutShadow(deleted_a.clone()),
            WriteOp::PutShadow(deleted_classic.clone()),
            WriteOp::PutShadow(deleted_new.clone()),
        ],
    )
    .await;
    let check = |store: Store, pass: &'static str| {
        let (deleted_a, deleted_classic, deleted_new) = (
            deleted_a.clone(),
            deleted_classic.clone(),
            deleted_new.clone(),
        );
        async move {
            assert_eq!(
                get_shadow(&store, "t", "a").await,
                Some(deleted_a),
                "{pass}"
            );
            assert_eq!(
                get_shadow(&store, "t", "").await,
                Some(deleted_classic),
                "{pass}"
            );
            assert_eq!(
                get_shadow(&store, "t", "never").await,
                Some(deleted_new),
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "t", None, 100).await,
                vec!["b", "c"],
                "{pass}"
            );
            // Paging after a tombstone's name.
            assert_eq!(
                shadow_names(&store, "t", Some("a"), 100).await,
                vec!["b", "c"],
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "t", Some("b"), 100).await,
                vec!["c"],
                "{pass}"
            );
            store
        }
    };
    let store = check(store, "same store").await;
    let (store, _) = reopen_registry(h, "shadow_tombstones", store).await;
    let store = check(store, "after reopen").await;

    // Re-created with the numbering continued; a tombstone removed; a live shadow tombstoned.
    let back = shadow("t", "a", 5, Some(br#"{"back":true}"#));
    commit(
        &store,
        vec![
            WriteOp::PutShadow(back.clone()),
            delete_shadow("t", "never"),
            WriteOp::PutShadow(shadow("t", "c", 10, None)),
        ],
    )
    .await;
    for pass in ["same store", "after reopen"] {
        assert_eq!(
            get_shadow(&store, "t", "a").await,
            Some(back.clone()),
            "{pass}"
        );
        assert_eq!(get_shadow(&store, "t", "never").await, None, "{pass}");
        assert_eq!(
            get_shadow(&store, "t", "c").await,
            Some(shadow("t", "c", 10, None)),
            "{pass}"
        );
        assert_eq!(
            shadow_names(&store, "t", None, 100).await,
            vec!["a", "b"],
            "{pass}"
        );
    }
    let (store, _) = reopen_registry(h, "shadow_tombstones", store).await;
    assert_eq!(get_shadow(&store, "t", "a").await, Some(back));
    assert_eq!(get_shadow(&store, "t", "never").await, None);
    assert_eq!(shadow_names(&store, "t", None, 100).await, vec!["a", "b"]);
    store.close().await.expect("close");
}

/// Shadow operations of one group (one submission, or several nobody waits between) take
/// effect in their order per key, interleaved with the operations the planner batches or
/// treats as barriers.
pub async fn shadow_order_within_a_group(h: &dyn Harness) {
    let store = open(h, "shadow_order").await;
    commit(
        &store,
        vec![
            WriteOp::PutSession(session("t")),
            WriteOp::PutShadow(shadow("t", "existing", 1, Some(b"old"))),
            WriteOp::PutShadow(shadow("t", "existing2", 1, Some(b"old"))),
            WriteOp::PutShadow(shadow("t", "existing3", 1, Some(b"old"))),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            // put then delete: absent
            WriteOp::PutShadow(shadow("t", "put-delete", 1, Some(b"1"))),
            WriteOp::PutOutbound(outbound("t", 1)),
            delete_shadow("t", "put-delete"),
            // delete then put: present
            delete_shadow("t", "delete-put"),
            WriteOp::PutShadow(shadow("t", "delete-put", 1, Some(b"2"))),
            // put then tombstone: the tombstone
            WriteOp::PutShadow(shadow("t", "put-tombstone", 1, Some(b"3"))),
            WriteOp::PutOutbound(outbound("t", 2)),
            WriteOp::PutShadow(shadow("t", "put-tombstone", 2, None)),
            // tombstone then put: live
            WriteOp::PutShadow(shadow("t", "tombstone-put", 1, None)),
            WriteOp::DeleteOutbound {
                client_id: "t".into(),
                seq: 1,
            },
            WriteOp::PutShadow(shadow("t", "tombstone-put", 2, Some(b"4"))),
            // the last put wins
            WriteOp::PutShadow(shadow("t", "twice", 1, Some(b"first"))),
            WriteOp::PutShadow(shadow("t", "twice", 2, Some(b"second"))),
            // A session of the thing's name is not the thing's: deleting it (a barrier of the
            // planner) leaves the shadows alone.
            WriteOp::DeleteSession {
                client_id: "t".into(),
            },
            WriteOp::PutRegistry(registry("thing", "t", b"{}")),
            // existing rows: tombstoned then removed; removed then put back; replaced then
            // tombstoned
            WriteOp::PutShadow(shadow("t", "existing", 2, None)),
            delete_shadow("t", "existing"),
            delete_shadow("t", "existing2"),
            WriteOp::PutShadow(shadow("t", "existing2", 5, Some(b"new"))),
            WriteOp::PutShadow(shadow("t", "existing3", 2, Some(b"new"))),
            WriteOp::PutShadow(shadow("t", "existing3", 3, None)),
            // the classic shadow and a named one of the same thing are separate keys
            WriteOp::PutShadow(shadow("t", "", 1, Some(b"classic"))),
            delete_shadow("t", "classic"),
        ],
    )
    .await;
    // The same across submissions nobody waits between (most likely one group).
    let commits = vec![
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "put-delete",
            1,
            Some(b"1"),
        ))]),
        store.submit(vec![delete_shadow("s", "put-delete")]),
        store.submit(vec![delete_shadow("s", "delete-put")]),
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "delete-put",
            1,
            Some(b"2"),
        ))]),
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "put-tombstone",
            1,
            Some(b"3"),
        ))]),
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "put-tombstone",
            2,
            None,
        ))]),
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "twice",
            1,
            Some(b"first"),
        ))]),
        store.submit(vec![WriteOp::PutShadow(shadow(
            "s",
            "twice",
            2,
            Some(b"second"),
        ))]),
    ];
    for c in commits {
        c.await.expect("commit");
    }

    let expected: Vec<(&str, &str, Option<ShadowRecord>)> = vec![
        ("t", "put-delete", None),
        (
            "t",
            "delete-put",
            Some(shadow("t", "delete-put", 1, Some(b"2"))),
        ),
        (
            "t",
            "put-tombstone",
            Some(shadow("t", "put-tombstone", 2, None)),
        ),
        (
            "t",
            "tombstone-put",
            Some(shadow("t", "tombstone-put", 2, Some(b"4"))),
        ),
        ("t", "twice", Some(shadow("t", "twice", 2, Some(b"second")))),
        ("t", "existing", None),
        (
            "t",
            "existing2",
            Some(shadow("t", "existing2", 5, Some(b"new"))),
        ),
        ("t", "existing3", Some(shadow("t", "existing3", 3, None))),
        ("t", "", Some(shadow("t", "", 1, Some(b"classic")))),
        ("s", "put-delete", None),
        (
            "s",
            "delete-put",
            Some(shadow("s", "delete-put", 1, Some(b"2"))),
        ),
        (
            "s",
            "put-tombstone",
            Some(shadow("s", "put-tombstone", 2, None)),
        ),
        ("s", "twice", Some(shadow("s", "twice", 2, Some(b"second")))),
    ];
    let check = |store: Store, pass: &'static str| {
        let expected = expected.clone();
        async move {
            for (thing, name, record) in expected {
                assert_eq!(
                    get_shadow(&store, thing, name).await,
                    record,
                    "{pass}: {thing}/{name}"
                );
            }
            assert_eq!(
                shadow_names(&store, "t", None, 100).await,
                vec!["delete-put", "existing2", "tombstone-put", "twice"],
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "s", None, 100).await,
                vec!["delete-put", "twice"],
                "{pass}"
            );
            assert!(sessions(&store).await.is_empty(), "{pass}");
            assert_eq!(
                registry_all(&store).await,
                vec![registry("thing", "t", b"{}")],
                "{pass}"
            );
            store
        }
    };
    let store = check(store, "same store").await;
    let (store, _) = reopen_registry(h, "shadow_order", store).await;
    let store = check(store, "after reopen").await;
    store.close().await.expect("close");
}

/// `list_shadow_names` orders names byte-wise (not by locale: case, punctuation, digits and
/// non-ASCII), pages strictly after `after` (stored or not) with at most `limit` names, and
/// leaves out the classic shadow, tombstones and other things' shadows.
pub async fn shadow_list_order_and_paging(h: &dyn Harness) {
    let store = open(h, "shadow_list").await;
    let order: &[&str] = &[
        " ", "-", "0", "10", "9", ":", "A", "B", "CONFIG", "Config", "Z", "_", "a", "a b", "a-b",
        "a:b", "a_b", "ab", "b", "config", "z", "~", "é", "ö", "名前", "💡",
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the fixture is in byte-wise order"
    );
    // Written in a scrambled order, over several groups, among rows the list leaves out.
    let mut scrambled: Vec<usize> = (0..order.len()).collect();
    scrambled.sort_by_key(|&i| (i * 7 + 3) % order.len());
    for (round, chunk) in scrambled.chunks(5).enumerate() {
        let mut ops: Vec<WriteOp> = chunk
            .iter()
            .map(|&i| WriteOp::PutShadow(shadow("t", order[i], i as u64, Some(b"{}"))))
            .collect();
        let round = round as u64;
        ops.push(WriteOp::PutShadow(shadow(
            "t",
            &format!("a{round}"),
            round,
            None,
        )));
        ops.push(WriteOp::PutShadow(shadow(
            "T",
            &format!("b{round}"),
            round,
            Some(b"{}"),
        )));
        ops.push(WriteOp::PutShadow(shadow(
            "t2",
            &format!("c{round}"),
            round,
            Some(b"{}"),
        )));
        commit(&store, ops).await;
    }
    commit(
        &store,
        vec![
            WriteOp::PutShadow(shadow("t", "", 1, Some(b"{}"))),
            WriteOp::PutShadow(shadow("", "orphan", 1, Some(b"{}"))),
        ],
    )
    .await;
    let all: Vec<String> = order.iter().map(|&n| n.to_owned()).collect();

    let check = |store: Store, pass: &'static str| {
        let all = all.clone();
        async move {
            assert_eq!(shadow_names(&store, "t", None, 1000).await, all, "{pass}");
            assert_eq!(
                shadow_names(&store, "t", None, usize::MAX).await,
                all,
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "t", Some(""), 1000).await,
                all,
                "{pass}: after the classic shadow's name"
            );
            assert!(
                shadow_names(&store, "t", None, 0).await.is_empty(),
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "t", None, 1).await,
                vec![" "],
                "{pass}"
            );
            for page in 1..=4 {
                assert_eq!(all_shadow_names(&store, "t", page).await, all, "{pass}");
            }
            // After each stored name, and after names between and beyond them.
            let mut afters: Vec<String> = all.clone();
            afters.extend(
                [
                    "!",
                    "1",
                    "AA",
                    "Cz",
                    "a0",
                    "config0",
                    "e",
                    "\u{10ffff}",
                    "a3",
                    "b9",
                ]
                .map(str::to_owned),
            );
            for after in &afters {
                let expected: Vec<String> =
                    all.iter().filter(|n| *n > after).take(3).cloned().collect();
                assert_eq!(
                    shadow_names(&store, "t", Some(after), 3).await,
                    expected,
                    "{pass}: after {after:?}"
                );
            }
            // Other things (a thing name differing in case, one it is a prefix of).
            assert_eq!(
                shadow_names(&store, "T", None, 1000).await,
                (0..6).map(|r| format!("b{r}")).collect::<Vec<_>>(),
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "t2", Some("c2"), 2).await,
                vec!["c3", "c4"],
                "{pass}"
            );
            assert_eq!(
                shadow_names(&store, "", None, 10).await,
                vec!["orphan"],
                "{pass}"
            );
            assert!(
                shadow_names(&store, "t3", None, 10).await.is_empty(),
                "{pass}"
            );
            store
        }
    };
    let store = check(store, "same store").await;
    let (store, _) = reopen_registry(h, "shadow_list", store).await;
    let store = check(store, "after reopen").await;
    store.close().await.expect("close");
}

/// Reads see every write whose commit resolved, while other tasks write at once; a store
/// opened afterwards on the same database sees them too.
pub async fn shadow_reads_see_resolved_commits(h: &dyn Harness) {
    let store = open(h, "shadow_visible").await;
    let tasks = 20u64;
    let versions = 30u64;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = format!("s{t:02}");
                for version in 1..=versions {
                    let document = version.to_string();
                    let record = shadow("thing", &name, version, Some(document.as_bytes()));
                    store
                        .submit(vec![WriteOp::PutShadow(record.clone())])
                        .await
                        .expect("commit");
                    assert_eq!(
                        store.get_shadow("thing", &name).await.expect("get"),
                        Some(record)
                    );
                    if version % 10 == 0 {
                        let names = store
                            .list_shadow_names("thing", None, 1000)
                            .await
                            .expect("list");
                        assert!(names.contains(&name), "{name} in {names:?}");
                    }
                }
                let tombstone = shadow("thing", &name, versions + 1, None);
                store
                    .submit(vec![WriteOp::PutShadow(tombstone.clone())])
                    .await
                    .expect("commit");
                assert_eq!(
                    store.get_shadow("thing", &name).await.expect("get"),
                    Some(tombstone)
                );
                let names = store
                    .list_shadow_names("thing", None, 1000)
                    .await
                    .expect("list");
                assert!(!names.contains(&name), "{name} tombstoned: {names:?}");
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let other = open(h, "shadow_visible").await;
    assert!(shadow_names(&other, "thing", None, 1000).await.is_empty());
    for t in 0..tasks {
        assert_eq!(
            get_shadow(&other, "thing", &format!("s{t:02}")).await,
            Some(shadow("thing", &format!("s{t:02}"), versions + 1, None))
        );
    }
    other.close().await.expect("close other");
    store.close().await.expect("close");
}

// ---- load generation (benchmarks) ----

/// The publish path of QoS 1 to persistent subscribers: `tasks` concurrent tasks each submit
/// single `PutOutbound` operations (payload of `payload_len` bytes) and await every commit
/// before the next, like publishers waiting for their PUBACK; `total_ops` messages in all.
/// With `online`, each message is then also sent and acknowledged, as for a connected
/// subscriber: a `SetOutboundState` and a `DeleteOutbound`, submitted without waiting.
/// Returns the messages written, the seconds taken and the store's counters over the run
/// (after a flush).
pub async fn put_outbound_load(
    store: &Store,
    tasks: u64,
    total_ops: u64,
    payload_len: usize,
    online: bool,
) -> (u64, f64, crate::StoreStats) {
    let per_task = total_ops / tasks.max(1);
    let sessions = (0..tasks)
        .map(|t| WriteOp::PutSession(session(&format!("bench{t}"))))
        .collect();
    store.submit(sessions).await.expect("sessions");
    let before = store.stats();
    let payload = Bytes::from(vec![0x42u8; payload_len]);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let client = format!("bench{t}");
                let topic = format!("devices/{client}/telemetry");
                for seq in 0..per_task {
                    let record = OutboundRecord {
                        client_id: client.clone(),
                        seq,
                        state: OutboundState::Queued,
                        subscription_ids: vec![1],
                        message: StoredMessage {
                            topic: topic.clone(),
                            payload: payload.clone(),
                            qos: 1,
                            retain: false,
                            properties: Bytes::new(),
                            expires_at_ms: None,
                        },
                    };
                    store
                        .submit(vec![WriteOp::PutOutbound(record)])
                        .await
                        .expect("commit");
                    if online {
                        drop(store.submit(vec![WriteOp::SetOutboundState {
                            client_id: client.clone(),
                            seq,
                            state: OutboundState::Published {
                                packet_id: (seq % 65535) as u16 + 1,
                            },
                        }]));
                        drop(store.submit(vec![WriteOp::DeleteOutbound {
                            client_id: client.clone(),
                            seq,
                        }]));
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    store.flush().await.expect("flush");
    let secs = started.elapsed().as_secs_f64();
    let after = store.stats();
    let stats = crate::StoreStats {
        ops_committed: after.ops_committed - before.ops_committed,
        groups_committed: after.groups_committed - before.groups_committed,
        groups_failed: after.groups_failed - before.groups_failed,
    };
    (per_task * tasks, secs, stats)
}
