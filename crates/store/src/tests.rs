//! SQLite: the conformance suite, a crash test, corruption and write failures.

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::conformance::{self, Harness, outbound, retained, session, shadow};
use crate::{Durability, ShadowRecord, Store, StoreError, WriteOp};

struct SqliteHarness {
    dir: tempfile::TempDir,
    durability: Durability,
}

impl SqliteHarness {
    fn new(durability: Durability) -> SqliteHarness {
        SqliteHarness {
            dir: tempfile::tempdir().expect("temp dir"),
            durability,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.sqlite"))
    }
}

impl Harness for SqliteHarness {
    fn open<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Store, StoreError>> + Send + 'a>> {
        Box::pin(async move { Store::open_sqlite(&self.path(name), self.durability).await })
    }
}

mod process {
    use super::*;
    conformance::conformance_tests!(SqliteHarness::new(Durability::Process));
}

mod fsync {
    use super::*;
    conformance::conformance_tests!(SqliteHarness::new(Durability::Fsync));
}

async fn raw(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect_with(&sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .expect("raw connection")
}

/// Rows damaged behind the store's back load as `Corrupt`, never a panic.
#[tokio::test]
async fn corrupt_rows_are_errors() {
    let h = SqliteHarness::new(Durability::Process);
    let damage: &[(&str, bool)] = &[
        ("UPDATE outbound SET state = 7", true),
        ("UPDATE outbound SET state = 1, packet_id = NULL", true),
        ("UPDATE outbound SET packet_id = 70000, state = 2", true),
        ("UPDATE outbound SET qos = 300", true),
        ("UPDATE outbound SET qos = 3", true),
        ("UPDATE outbound SET retain = 2", true),
        ("UPDATE outbound SET subscription_ids = '1,x'", true),
        ("UPDATE outbound SET seq = 'not a number'", true),
        ("UPDATE outbound SET payload = NULL", false), // NOT NULL: the damage itself fails
        ("UPDATE sessions SET protocol = 256", true),
        ("UPDATE sessions SET expiry_interval = -1", true),
        ("UPDATE sessions SET disconnected_at_ms = 'x'", true),
        ("UPDATE subscriptions SET options = 1000", true),
        ("UPDATE subscriptions SET subscription_id = -5", true),
        ("UPDATE inbound_qos2 SET packet_id = 65536", true),
        // NULLs in a table without its NOT NULL constraints (the driver would read "" or 0).
        (
            "DROP TABLE sessions; \
             CREATE TABLE sessions (client_id TEXT, protocol BIGINT, expiry_interval BIGINT, \
             disconnected_at_ms BIGINT); \
             INSERT INTO sessions VALUES (NULL, 5, 60, NULL)",
            true,
        ),
        (
            "DROP TABLE sessions; \
             CREATE TABLE sessions (client_id TEXT, protocol BIGINT, expiry_interval BIGINT, \
             disconnected_at_ms BIGINT); \
             INSERT INTO sessions VALUES ('c', NULL, 60, NULL)",
            true,
        ),
        ("UPDATE retained SET modified_at_ms = 1.5", false),
        ("UPDATE retained SET qos = 'two'", false),
    ];
    for (i, (statement, sessions_fail)) in damage.iter().enumerate() {
        let name = format!("corrupt{i}");
        let store = h.open(&name).await.expect("open");
        store
            .submit(vec![
                WriteOp::PutSession(session("c")),
                WriteOp::PutOutbound(outbound("c", 1)),
                WriteOp::PutSubscription(conformance::subscription("c", "f")),
                WriteOp::PutInboundQos2 {
                    client_id: "c".into(),
                    packet_id: 1,
                },
                WriteOp::PutRetained(retained("r", b"x")),
            ])
            .await
            .expect("commit");
        store.close().await.expect("close");
        let mut conn = raw(&h.path(&name)).await;
        let damaged = sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .is_ok();
        conn.close().await.expect("close raw");
        let store = h.open(&name).await.expect("reopen");
        let sessions = store.load_sessions().await;
        let retained = store.load_retained().await;
        store.close().await.expect("close");
        if !damaged {
            assert!(
                sessions.is_ok() && retained.is_ok(),
                "{statement}: the damage was refused, the data is intact"
            );
            continue;
        }
        if *sessions_fail {
            assert!(
                matches!(sessions, Err(StoreError::Corrupt(_))),
                "{statement}: {sessions:?}"
            );
        } else {
            assert!(
                matches!(retained, Err(StoreError::Corrupt(_))),
                "{statement}: {retained:?}"
            );
        }
    }
}

/// Registry rows damaged behind the store's back (wrong types, invalid UTF-8, NULLs) load as
/// `Corrupt`, never a panic.
#[tokio::test]
async fn corrupt_registry_rows_are_errors() {
    let h = SqliteHarness::new(Durability::Process);
    // (damage, whether the load must fail; otherwise the damage must have been refused)
    let damage: &[(&str, bool)] = &[
        ("UPDATE registry SET kind = x'ff00'", true),
        ("UPDATE registry SET record_key = x'01'", true),
        ("UPDATE registry SET record_key = CAST(x'ff' AS TEXT)", true),
        ("UPDATE registry SET kind = CAST(x'c3' AS TEXT)", true),
        ("UPDATE registry SET document = 42", true),
        ("UPDATE registry SET document = 1.5", true),
        ("UPDATE registry SET document = NULL", false), // NOT NULL: the damage itself fails
        ("UPDATE registry SET kind = NULL", false),
        // A table without the NOT NULL constraints, holding NULLs.
        (
            "DROP TABLE registry; \
             CREATE TABLE registry (kind TEXT, record_key TEXT, document BLOB); \
             INSERT INTO registry VALUES ('thing', NULL, x'00')",
            true,
        ),
        (
            "DROP TABLE registry; \
             CREATE TABLE registry (kind TEXT, record_key TEXT, document BLOB); \
             INSERT INTO registry VALUES ('thing', 'k', NULL)",
            true,
        ),
    ];
    for (i, (statement, load_fails)) in damage.iter().enumerate() {
        let name = format!("corrupt_registry{i}");
        let store = h.open(&name).await.expect("open");
        store
            .submit(vec![
                WriteOp::PutRegistry(conformance::registry("thing", "k", b"{}")),
                WriteOp::PutSession(session("c")),
            ])
            .await
            .expect("commit");
        store.close().await.expect("close");
        let mut conn = raw(&h.path(&name)).await;
        let damaged = sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .is_ok();
        conn.close().await.expect("close raw");
        let store = h.open(&name).await.expect("reopen");
        let registry = store.load_registry().await;
        let sessions = store.load_sessions().await;
        store.close().await.expect("close");
        assert!(sessions.is_ok(), "{statement}: other tables still load");
        if *load_fails {
            assert!(damaged, "{statement}: the damage should apply");
            assert!(
                matches!(registry, Err(StoreError::Corrupt(_))),
                "{statement}: {registry:?}"
            );
        } else {
            assert!(!damaged, "{statement}: the schema should refuse it");
            assert_eq!(
                registry.ok(),
                Some(vec![conformance::registry("thing", "k", b"{}")]),
                "{statement}: the damage was refused, the data is intact"
            );
        }
    }
}

/// Shadow rows damaged behind the store's back (wrong types, invalid UTF-8, NULLs) read as
/// `Corrupt`, never a panic.
#[tokio::test]
async fn corrupt_shadow_rows_are_errors() {
    let h = SqliteHarness::new(Durability::Process);
    let intact = shadow("t", "n", 7, Some(b"{}"));
    // (damage, what `get_shadow("t", "n")` gives, whether `list_shadow_names("t")` fails);
    // "refused": the schema refuses the damage, both read the intact row.
    let damage: &[(&str, &str, bool)] = &[
        ("UPDATE shadows SET version = 'x'", "corrupt", false),
        ("UPDATE shadows SET version = 1.5", "corrupt", false),
        (
            "UPDATE shadows SET updated_at_ms = 'soon'",
            "corrupt",
            false,
        ),
        ("UPDATE shadows SET document = 42", "corrupt", false),
        ("UPDATE shadows SET shadow_name = x'ff'", "absent", true),
        (
            "UPDATE shadows SET shadow_name = CAST(x'ff' AS TEXT)",
            "absent",
            true,
        ),
        ("UPDATE shadows SET version = NULL", "refused", false),
        ("UPDATE shadows SET shadow_name = NULL", "refused", false),
        // A table without the NOT NULL constraints, holding NULLs.
        (
            "DROP TABLE shadows; \
             CREATE TABLE shadows (thing_name TEXT, shadow_name TEXT, version BIGINT, \
             document BLOB, updated_at_ms BIGINT); \
             INSERT INTO shadows VALUES ('t', 'n', NULL, x'00', 1)",
            "corrupt",
            false,
        ),
        (
            "DROP TABLE shadows; \
             CREATE TABLE shadows (thing_name TEXT, shadow_name TEXT, version BIGINT, \
             document BLOB, updated_at_ms BIGINT); \
             INSERT INTO shadows VALUES ('t', 'n', 1, x'00', NULL)",
            "corrupt",
            false,
        ),
    ];
    for (i, (statement, get_gives, list_fails)) in damage.iter().enumerate() {
        let name = format!("corrupt_shadow{i}");
        let store = h.open(&name).await.expect("open");
        store
            .submit(vec![
                WriteOp::PutShadow(intact.clone()),
                WriteOp::PutSession(session("c")),
            ])
            .await
            .expect("commit");
        store.close().await.expect("close");
        let mut conn = raw(&h.path(&name)).await;
        let damaged = sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .is_ok();
        conn.close().await.expect("close raw");
        let store = h.open(&name).await.expect("reopen");
        let got = store.get_shadow("t", "n").await;
        let names = store.list_shadow_names("t", None, 10).await;
        let sessions = store.load_sessions().await;
        store.close().await.expect("close");
        assert!(sessions.is_ok(), "{statement}: other tables still load");
        assert_eq!(damaged, *get_gives != "refused", "{statement}: damaged");
        match *get_gives {
            "corrupt" => assert!(
                matches!(got, Err(StoreError::Corrupt(_))),
                "{statement}: {got:?}"
            ),
            "absent" => assert!(matches!(got, Ok(None)), "{statement}: {got:?}"),
            _ => assert_eq!(got.ok(), Some(Some(intact.clone())), "{statement}"),
        }
        if *list_fails {
            assert!(
                matches!(names, Err(StoreError::Corrupt(_))),
                "{statement}: {names:?}"
            );
        } else {
            assert!(names.is_ok(), "{statement}: {names:?}");
        }
    }
}

/// A failed group commit fails its commits, not the ones after it; flush reports it.
#[tokio::test]
async fn failed_write_is_reported_and_later_writes_continue() {
    let h = SqliteHarness::new(Durability::Process);
    let store = h.open("fail").await.expect("open");
    store
        .submit(vec![WriteOp::PutSession(session("a"))])
        .await
        .expect("commit");
    let mut conn = raw(&h.path("fail")).await;
    sqlx::raw_sql("DROP TABLE retained")
        .execute(&mut conn)
        .await
        .expect("drop");
    conn.close().await.expect("close raw");

    let failed = store
        .submit(vec![
            WriteOp::PutSession(session("b")),
            WriteOp::PutRetained(retained("r", b"x")),
        ])
        .await;
    assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
    store
        .submit(vec![WriteOp::PutSession(session("c"))])
        .await
        .expect("later commit");
    assert!(
        store.flush().await.is_err(),
        "flush reports the earlier failure"
    );
    assert_eq!(store.stats().groups_failed, 1);
    let ids: Vec<String> = store
        .load_sessions()
        .await
        .expect("load")
        .into_iter()
        .map(|s| s.session.client_id)
        .collect();
    // "b" was in the failed transaction with the retained message: not written.
    assert_eq!(ids, vec!["a", "c"]);
    assert!(
        store.close().await.is_err(),
        "close flushes, so it reports the failure too"
    );
}

/// A database written by a newer build is refused.
#[tokio::test]
async fn newer_schema_is_refused() {
    let h = SqliteHarness::new(Durability::Process);
    h.open("newer")
        .await
        .expect("open")
        .close()
        .await
        .expect("close");
    let mut conn = raw(&h.path("newer")).await;
    sqlx::raw_sql("INSERT INTO schema_version (version, applied_at_ms) VALUES (999, 0)")
        .execute(&mut conn)
        .await
        .expect("insert");
    conn.close().await.expect("close raw");
    assert!(matches!(
        h.open("newer").await,
        Err(StoreError::Migration(_))
    ));
}

const CRASH_CHILD_ENV: &str = "FERROCORE_STORE_CRASH_CHILD";
const CRASH_CLIENTS: usize = 4;

/// A registry record of the crash test: kind `kind`, a key naming client `c` (and `seq` in the
/// "log" kind), the seq as document.
fn crash_registry(kind: &str, c: usize, seq: u64) -> crate::RegistryRecord {
    let key = if kind == "log" {
        format!("c{c}/{seq:012}")
    } else {
        format!("c{c}")
    };
    conformance::registry(kind, &key, seq.to_string().as_bytes())
}

/// The named shadow of the crash test written at `seq` (a multiple of 3).
fn crash_shadow_name(seq: u64) -> String {
    format!("n{seq:012}")
}

/// What the crash test's named shadow written at `s` is once every commit up to `max` is
/// durable (and maybe the next ones), if that is decided: put at `s`; if `s % 6 == 0`
/// tombstoned at `s + 3`, and if also `s % 12 == 0` removed at `s + 9`.
fn crash_shadow_expected(c: usize, s: u64, max: u64) -> Option<Option<ShadowRecord>> {
    let thing = format!("c{c}");
    let name = crash_shadow_name(s);
    let live = shadow(&thing, &name, s, Some(s.to_string().as_bytes()));
    if s % 6 == 3 {
        Some(Some(live))
    } else if s + 3 > max {
        None
    } else if !s.is_multiple_of(12) {
        Some(Some(shadow(&thing, &name, s + 3, None)))
    } else if s + 9 <= max {
        Some(None)
    } else {
        None
    }
}

/// The seq a [`crash_registry`] record holds.
fn document_seq(record: &crate::RegistryRecord) -> u64 {
    std::str::from_utf8(&record.document)
        .ok()
        .and_then(|d| d.parse().ok())
        .expect("a seq as document")
}

/// The child of [`committed_ops_survive_sigkill`]: writes until killed, printing every commit.
/// Does nothing when run as an ordinary test.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Store::open_sqlite(Path::new(&path), Durability::Process)
            .await
            .expect("open");
        let sessions = (0..CRASH_CLIENTS)
            .map(|c| WriteOp::PutSession(session(&format!("c{c}"))))
            .collect();
        store.submit(sessions).await.expect("sessions");
        let tasks: Vec<_> = (0..CRASH_CLIENTS)
            .map(|c| {
                let store = store.clone();
                tokio::spawn(async move {
                    let client = format!("c{c}");
                    for seq in 0u64.. {
                        // Some groups also delete, so the log holds more than appends.
                        let mut ops = vec![
                            WriteOp::PutOutbound(outbound(&client, seq)),
                            // A record replaced at every commit, and one added at some.
                            WriteOp::PutRegistry(crash_registry("latest", c, seq)),
                        ];
                        if seq % 3 == 0 {
                            ops.push(WriteOp::PutRegistry(crash_registry("log", c, seq)));
                        }
                        // The classic shadow at every commit; named ones put, tombstoned and
                        // removed (see `crash_shadow_expected`).
                        let seq_text = seq.to_string();
                        let document = Some(seq_text.as_bytes());
                        ops.push(WriteOp::PutShadow(shadow(&client, "", seq, document)));
                        if seq % 3 == 0 {
                            let name = crash_shadow_name(seq);
                            ops.push(WriteOp::PutShadow(shadow(&client, &name, seq, document)));
                        }
                        if seq % 6 == 3 {
                            let name = crash_shadow_name(seq - 3);
                            ops.push(WriteOp::PutShadow(shadow(&client, &name, seq, None)));
                        }
                        if seq % 12 == 9 {
                            let name = crash_shadow_name(seq - 9);
                            ops.push(conformance::delete_shadow(&client, &name));
                        }
                        if seq % 5 == 4 {
                            ops.push(WriteOp::SetOutboundState {
                                client_id: client.clone(),
                                seq: seq - 1,
                                state: crate::OutboundState::Published { packet_id: 1 },
                            });
                        }
                        store.submit(ops).await.expect("commit");
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "committed {c} {seq}");
                        let _ = out.flush();
                    }
                })
            })
            .collect();
        // The parent kills us long before this; it only bounds a forgotten child.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(tasks);
    });
}

/// A process killed with SIGKILL in the middle of writing loses nothing it saw committed.
#[test]
fn committed_ops_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.sqlite");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut committed: Vec<Option<u64>> = vec![None; CRASH_CLIENTS];
    let mut lines = 0;
    let started = Instant::now();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        if words.next() != Some("committed") {
            continue;
        }
        let (Some(Ok(c)), Some(Ok(seq))) = (
            words.next().map(str::parse::<usize>),
            words.next().map(str::parse::<u64>),
        ) else {
            continue;
        };
        committed[c] = Some(committed[c].map_or(seq, |m| m.max(seq)));
        lines += 1;
        if lines >= 3000 || started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait for child");
    assert!(lines > 0, "the child committed nothing (status {status})");
    println!("crash test: killed the child ({status}) after {lines} commits seen: {committed:?}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Store::open_sqlite(&path, Durability::Process)
            .await
            .expect("reopen after crash");
        let sessions = store.load_sessions().await.expect("load");
        let registry = store.load_registry().await.expect("load registry");
        for (c, max) in committed.iter().enumerate() {
            let Some(max) = *max else { continue };
            // The replaced record holds the last committed seq or a later one (written, but
            // killed before it was printed).
            let latest = registry
                .iter()
                .find(|r| r.kind == "latest" && r.key == format!("c{c}"))
                .expect("latest record");
            let latest = document_seq(latest);
            assert!(
                latest >= max,
                "client c{c}: latest {latest} < committed {max}"
            );
            let logged: Vec<u64> = registry
                .iter()
                .filter(|r| r.kind == "log" && r.key.starts_with(&format!("c{c}/")))
                .map(|r| {
                    let seq = document_seq(r);
                    assert_eq!(r, &crash_registry("log", c, seq), "intact log record");
                    seq
                })
                .take_while(|&seq| seq <= max)
                .collect();
            assert_eq!(
                logged,
                (0..=max).filter(|s| s % 3 == 0).collect::<Vec<_>>(),
                "client c{c}: registry log committed up to {max}"
            );
        }
        for (c, max) in committed.iter().enumerate() {
            let Some(max) = *max else { continue };
            let thing = format!("c{c}");
            let classic = store
                .get_shadow(&thing, "")
                .await
                .expect("get shadow")
                .expect("classic shadow");
            assert!(
                classic.version >= max,
                "client c{c}: classic shadow version {} < committed {max}",
                classic.version
            );
            let version = classic.version;
            assert_eq!(
                classic,
                shadow(&thing, "", version, Some(version.to_string().as_bytes())),
                "intact classic shadow"
            );
            // Every live named shadow, paged.
            let mut listed: Vec<String> = Vec::new();
            loop {
                let page = store
                    .list_shadow_names(&thing, listed.last().map(String::as_str), 50)
                    .await
                    .expect("list shadow names");
                let done = page.len() < 50;
                listed.extend(page);
                if done {
                    break;
                }
            }
            for s in (0..=max).filter(|s| s % 3 == 0) {
                let Some(expected) = crash_shadow_expected(c, s, max) else {
                    continue;
                };
                let name = crash_shadow_name(s);
                let live = expected.as_ref().is_some_and(|r| r.document.is_some());
                assert_eq!(
                    store.get_shadow(&thing, &name).await.expect("get shadow"),
                    expected,
                    "client c{c}: shadow {name}, committed up to {max}"
                );
                assert_eq!(listed.contains(&name), live, "client c{c}: {name} listed");
            }
        }
        for (c, max) in committed.iter().enumerate() {
            let Some(max) = max else { continue };
            let s = sessions
                .iter()
                .find(|s| s.session.client_id == format!("c{c}"))
                .expect("session");
            let seqs: Vec<u64> = s
                .outbound
                .iter()
                .map(|o| o.seq)
                .take_while(|&seq| seq <= *max)
                .collect();
            assert_eq!(
                seqs,
                (0..=*max).collect::<Vec<_>>(),
                "client c{c}: committed up to {max}"
            );
            for o in &s.outbound {
                assert_eq!(o.message, outbound(&format!("c{c}"), o.seq).message);
            }
        }
        store.close().await.expect("close");
    });
}

/// Prints group-commit throughput (never asserts on it). The release-mode figure comes from
/// `cargo run --release -p ferrocore-store --features testing --example store_bench`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_smoke() {
    let h = SqliteHarness::new(Durability::Process);
    let store = h.open("throughput").await.expect("open");
    let (ops, secs, stats) = conformance::put_outbound_load(&store, 100, 20_000, 64, false).await;
    println!(
        "debug build: {ops} PutOutbound from 100 tasks in {secs:.3} s: {:.0} ops/s, {:.0} commits/s, {} groups",
        ops as f64 / secs,
        stats.groups_committed as f64 / secs,
        stats.groups_committed
    );
    store.close().await.expect("close");
}

/// A closed store leaves a self-contained database file: the log is checkpointed and removed.
#[tokio::test]
async fn close_checkpoints_the_log() {
    let h = SqliteHarness::new(Durability::Process);
    let store = h.open("checkpoint").await.expect("open");
    store
        .submit(vec![WriteOp::PutSession(session("c"))])
        .await
        .expect("commit");
    let ops = (0..1000)
        .map(|seq| WriteOp::PutOutbound(outbound("c", seq)))
        .collect();
    store.submit(ops).await.expect("commit");
    assert_eq!(
        store.load_sessions().await.expect("load")[0].outbound.len(),
        1000
    );
    let wal = h.dir.path().join("checkpoint.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0,
        "the log holds the writes"
    );
    store.close().await.expect("close");
    assert!(!wal.exists(), "the log is gone after close");
    let store = h.open("checkpoint").await.expect("reopen");
    assert_eq!(
        store.load_sessions().await.expect("load")[0].outbound.len(),
        1000
    );
    store.close().await.expect("close");
}
