//! The single writer: takes everything queued, writes it in one transaction, commits, then
//! resolves the commits of that group (group commit). Backend independent.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreStats, WriteOp};

/// Most queue messages taken into one transaction; the rest waits for the next one.
const MAX_MESSAGES_PER_GROUP: usize = 4096;

pub(crate) enum Msg {
    Submit {
        ops: Vec<WriteOp>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Close {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What a database backend does for the writer.
pub(crate) trait Backend: Send + 'static {
    /// Writes `ops` (the submissions of one group, in order) in one transaction and commits.
    /// On error nothing of the group is written.
    fn write_group(
        &mut self,
        ops: Vec<Vec<WriteOp>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Closes the connection.
    fn close(self) -> impl Future<Output = ()> + Send;
}

#[derive(Default)]
pub(crate) struct Stats {
    ops_committed: AtomicU64,
    groups_committed: AtomicU64,
    groups_failed: AtomicU64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            ops_committed: self.ops_committed.load(Ordering::Relaxed),
            groups_committed: self.groups_committed.load(Ordering::Relaxed),
            groups_failed: self.groups_failed.load(Ordering::Relaxed),
        }
    }
}

pub(crate) async fn run<B: Backend>(
    mut backend: B,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    stats: std::sync::Arc<Stats>,
) {
    let mut messages = Vec::with_capacity(MAX_MESSAGES_PER_GROUP);
    // A description of the first failed write, if any: flushes report it from then on, since
    // the failed operations are not durable and never will be.
    let mut earlier_failure: Option<String> = None;
    loop {
        if rx.recv_many(&mut messages, MAX_MESSAGES_PER_GROUP).await == 0 {
            // Every `Store` handle was dropped without `close`: what was queued is written.
            break;
        }
        let mut batches = Vec::with_capacity(messages.len());
        let mut waiters = Vec::with_capacity(messages.len());
        let mut flushes = Vec::new();
        let mut close = None;
        let mut op_count = 0u64;
        let mut drained = messages.drain(..);
        for msg in drained.by_ref() {
            match msg {
                Msg::Submit { ops, done } => {
                    op_count += ops.len() as u64;
                    if !ops.is_empty() {
                        batches.push(ops);
                    }
                    waiters.push(done);
                }
                Msg::Flush { done } => flushes.push(done),
                Msg::Close { done } => {
                    close = Some(done);
                    break;
                }
            }
        }
        // Anything queued behind a close is dropped unwritten: its commits resolve `Closed`.
        drop(drained);

        let result = if batches.is_empty() {
            Ok(())
        } else {
            backend.write_group(batches).await
        };
        match &result {
            Ok(()) => {
                if op_count > 0 {
                    stats.ops_committed.fetch_add(op_count, Ordering::Relaxed);
                    stats.groups_committed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                stats.groups_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, ops = op_count, "store: group commit failed");
                if earlier_failure.is_none() {
                    earlier_failure = Some(e.to_string());
                }
            }
        }
        for done in waiters {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(share));
        }
        let flush_result = || match &earlier_failure {
            None => Ok(()),
            Some(e) => Err(failed_earlier(e)),
        };
        for done in flushes {
            let _ = done.send(flush_result());
        }
        if let Some(done) = close {
            rx.close();
            let flush = flush_result();
            backend.close().await;
            let _ = done.send(flush);
            return;
        }
    }
    backend.close().await;
}

/// A copy of `e` for each of the commits of a failed group (errors are not `Clone`).
fn share(e: &StoreError) -> StoreError {
    match e {
        StoreError::Closed => StoreError::Closed,
        StoreError::Migration(s) => StoreError::Migration(s.clone()),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Database(e) => StoreError::Database(share_sqlx(e)),
    }
}

fn share_sqlx(e: &sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::Database(db) => sqlx::Error::Database(Box::new(SharedDatabaseError {
            message: db.message().to_owned(),
            code: db.code().map(|c| c.into_owned()),
            kind: copy_kind(&db.kind()),
        })),
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

fn copy_kind(kind: &sqlx::error::ErrorKind) -> sqlx::error::ErrorKind {
    use sqlx::error::ErrorKind as K;
    match kind {
        K::UniqueViolation => K::UniqueViolation,
        K::ForeignKeyViolation => K::ForeignKeyViolation,
        K::NotNullViolation => K::NotNullViolation,
        K::CheckViolation => K::CheckViolation,
        K::ExclusionViolation => K::ExclusionViolation,
        _ => K::Other,
    }
}

fn failed_earlier(description: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
        "an earlier write was not made durable: {description}"
    ))))
}

/// A database error copied for every commit of a failed group.
#[derive(Debug)]
struct SharedDatabaseError {
    message: String,
    code: Option<String>,
    kind: sqlx::error::ErrorKind,
}

impl std::fmt::Display for SharedDatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "(code: {code}) {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SharedDatabaseError {}

impl sqlx::error::DatabaseError for SharedDatabaseError {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.as_deref().map(std::borrow::Cow::Borrowed)
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        copy_kind(&self.kind)
    }
}
