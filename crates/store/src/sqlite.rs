//! The SQLite backend: one writer connection owned by the writer task, a small pool for loads.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, SqlitePool};

use crate::plan::{self, Step};
use crate::schema::{self, Dialect};
use crate::sql::{self, corrupt, narrow};
use crate::{
    Durability, LoadedSession, OutboundRecord, RegistryRecord, RetainedMessage, SessionRecord,
    ShadowRecord, StoreError, StoredMessage, SubscriptionRecord, WriteOp, writer,
};

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// How long a statement waits for a lock held by another connection (another process, or a
/// reader checkpointing) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            // WAL + NORMAL: a commit is in the log (the OS's page cache) when it returns,
            // so it survives a crash of the process; the log is fsynced at checkpoints.
            Durability::Process => SqliteSynchronous::Normal,
            // WAL + FULL: the log is fsynced at every commit.
            Durability::Fsync => SqliteSynchronous::Full,
        })
        .busy_timeout(BUSY_TIMEOUT)
        // No foreign keys in the schema (see `schema`); kept on for any added later.
        .foreign_keys(true)
        // Room for every statement, including the multi-row ones of each row count.
        .statement_cache_capacity(3 * plan::MAX_ROWS + 32)
        // Truncate the log back to this size after checkpoints instead of letting it keep
        // its high-water mark.
        .pragma("journal_size_limit", "67108864")
        .pragma("wal_autocheckpoint", AUTOCHECKPOINT_PAGES.to_string())
        // Statement journals (multi-row upserts open one) in memory, not in a temporary file.
        .pragma("temp_store", "MEMORY")
        // Takes effect when the file is created. A group commit writes every page it touched
        // to the log, and queueing messages for N subscribers touches N index pages (one per
        // subscriber's end of queue): smaller pages, fewer bytes. 2 KiB measured best for
        // 64-byte to 4-KiB payloads (1 KiB pushes ordinary payloads into overflow pages).
        .page_size(2048)
}

pub(crate) async fn open(
    path: &Path,
    durability: Durability,
) -> Result<(SqliteBackend, SqlitePool), StoreError> {
    let options = options(path, durability);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    migrate(&mut conn).await?;
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(30))
        .connect_lazy_with(options);
    Ok((SqliteBackend { conn }, pool))
}

/// Log pages after which a commit copies the log into the database file (a checkpoint).
///
/// SQLite's default is 1000. A checkpoint copies each page once however often the log holds
/// it, and the hot path rewrites the same pages (each subscriber's end of queue) group after
/// group: checkpointing rarely copies much less than it would often. 16384 pages of 2 KiB
/// bound the log to about 32 MiB (what a crash recovery reads).
const AUTOCHECKPOINT_PAGES: u32 = 16_384;

async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    // IMMEDIATE: take the write lock first, so two processes opening a new database do not
    // both try to apply the same migration.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(schema::CREATE_VERSION_TABLE)
        .execute(&mut *tx)
        .await?;
    let current: Option<i64> = sqlx::query_scalar(schema::SELECT_VERSION)
        .fetch_one(&mut *tx)
        .await?;
    let current = current.unwrap_or(0);
    let latest = schema::latest_version();
    if current > latest {
        return Err(StoreError::Migration(format!(
            "the database has schema version {current}, newer than this build knows ({latest})"
        )));
    }
    for migration in schema::MIGRATIONS.iter().filter(|m| m.version > current) {
        for statement in migration.statements {
            let text = Dialect::Sqlite.statement(statement);
            sqlx::raw_sql(sqlx::AssertSqlSafe(text))
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    StoreError::Migration(format!("migration {}: {e}", migration.version))
                })?;
        }
        sqlx::query(schema::INSERT_VERSION)
            .bind(migration.version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) struct SqliteBackend {
    conn: SqliteConnection,
}

impl writer::Backend for SqliteBackend {
    async fn write_group(&mut self, batches: Vec<Vec<WriteOp>>) -> Result<(), StoreError> {
        let steps = plan::plan(batches);
        if let [step] = &steps[..]
            && step.statements() == 1
        {
            // One statement is atomic by itself: skip the round trips of BEGIN and COMMIT.
            // (The common case: a group of outbound messages, up to `MAX_ROWS` of them.)
            for step in steps {
                execute(&mut self.conn, step).await?;
            }
        } else {
            let mut tx = self.conn.begin().await?;
            for step in steps {
                execute(&mut tx, step).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn close(self) {
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "store: closing the SQLite writer connection failed");
        }
    }
}

async fn execute(conn: &mut SqliteConnection, step: Step) -> Result<(), StoreError> {
    match step {
        Step::PutOutbound(records) => {
            let mut query = sqlx::query(sql::put_outbound(Dialect::Sqlite, records.len()));
            for record in records {
                query = bind_outbound(query, record);
            }
            query.execute(conn).await?;
        }
        Step::SetOutboundState(rows) => {
            let mut query = sqlx::query(sql::set_outbound_state(Dialect::Sqlite, rows.len()));
            for (client_id, seq, state) in rows {
                let (state, packet_id) = sql::state_to_sql(state);
                query = query
                    .bind(client_id)
                    .bind(sql::u64_to_sql(seq))
                    .bind(state)
                    .bind(packet_id);
            }
            query.execute(conn).await?;
        }
        Step::DeleteOutbound(keys) => {
            let mut query = sqlx::query(sql::delete_outbound(Dialect::Sqlite, keys.len()));
            for (client_id, seq) in keys {
                query = query.bind(client_id).bind(sql::u64_to_sql(seq));
            }
            query.execute(conn).await?;
        }
        Step::Single(op) => single(conn, op).await?,
    }
    Ok(())
}

fn bind_outbound(query: Query, record: OutboundRecord) -> Query {
    let (state, packet_id) = sql::state_to_sql(record.state);
    let m = record.message;
    query
        .bind(record.client_id)
        .bind(sql::u64_to_sql(record.seq))
        .bind(state)
        .bind(packet_id)
        .bind(sql::subscription_ids_to_sql(&record.subscription_ids))
        .bind(m.topic)
        .bind(Vec::from(m.payload))
        .bind(i64::from(m.qos))
        .bind(i64::from(m.retain))
        .bind(Vec::from(m.properties))
        .bind(m.expires_at_ms.map(sql::u64_to_sql))
}

async fn single(conn: &mut SqliteConnection, op: WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::PutRetained(r) => {
            let m = r.message;
            sqlx::query(sql::PUT_RETAINED)
                .bind(m.topic)
                .bind(Vec::from(m.payload))
                .bind(i64::from(m.qos))
                .bind(i64::from(m.retain))
                .bind(Vec::from(m.properties))
                .bind(m.expires_at_ms.map(sql::u64_to_sql))
                .bind(sql::u64_to_sql(r.modified_at_ms))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteRetained { topic } => {
            sqlx::query(sql::DELETE_RETAINED)
                .bind(topic)
                .execute(conn)
                .await?;
        }
        WriteOp::PutSession(s) => {
            sqlx::query(sql::PUT_SESSION)
                .bind(s.client_id)
                .bind(i64::from(s.protocol))
                .bind(i64::from(s.expiry_interval))
                .bind(s.disconnected_at_ms.map(sql::u64_to_sql))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteSession { client_id } => {
            for statement in sql::DELETE_SESSION {
                sqlx::query(statement)
                    .bind(client_id.clone())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        WriteOp::PutSubscription(s) => {
            sqlx::query(sql::PUT_SUBSCRIPTION)
                .bind(s.client_id)
                .bind(s.filter)
                .bind(i64::from(s.options))
                .bind(s.subscription_id.map(i64::from))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteSubscription { client_id, filter } => {
            sqlx::query(sql::DELETE_SUBSCRIPTION)
                .bind(client_id)
                .bind(filter)
                .execute(conn)
                .await?;
        }
        WriteOp::SetOutboundState {
            client_id,
            seq,
            state,
        } => {
            let (state, packet_id) = sql::state_to_sql(state);
            sqlx::query(sql::SET_OUTBOUND_STATE)
                .bind(client_id)
                .bind(sql::u64_to_sql(seq))
                .bind(state)
                .bind(packet_id)
                .execute(conn)
                .await?;
        }
        WriteOp::PutInboundQos2 {
            client_id,
            packet_id,
        } => {
            sqlx::query(sql::PUT_INBOUND_QOS2)
                .bind(client_id)
                .bind(i64::from(packet_id))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteInboundQos2 {
            client_id,
            packet_id,
        } => {
            sqlx::query(sql::DELETE_INBOUND_QOS2)
                .bind(client_id)
                .bind(i64::from(packet_id))
                .execute(conn)
                .await?;
        }
        WriteOp::PutRegistry(r) => {
            sqlx::query(sql::PUT_REGISTRY)
                .bind(r.kind)
                .bind(r.key)
                .bind(Vec::from(r.document))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteRegistry { kind, key } => {
            sqlx::query(sql::DELETE_REGISTRY)
                .bind(kind)
                .bind(key)
                .execute(conn)
                .await?;
        }
        WriteOp::PutShadow(r) => {
            sqlx::query(sql::PUT_SHADOW)
                .bind(r.thing_name)
                .bind(r.shadow_name)
                .bind(sql::u64_to_sql(r.version))
                .bind(r.document.map(Vec::from))
                .bind(sql::u64_to_sql(r.updated_at_ms))
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteShadow {
            thing_name,
            shadow_name,
        } => {
            sqlx::query(sql::DELETE_SHADOW)
                .bind(thing_name)
                .bind(shadow_name)
                .execute(conn)
                .await?;
        }
        // Batched by `plan`; kept correct if called directly.
        WriteOp::PutOutbound(record) => {
            bind_outbound(sqlx::query(sql::put_outbound(Dialect::Sqlite, 1)), record)
                .execute(conn)
                .await?;
        }
        WriteOp::DeleteOutbound { client_id, seq } => {
            sqlx::query(sql::delete_outbound(Dialect::Sqlite, 1))
                .bind(client_id)
                .bind(sql::u64_to_sql(seq))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Reads column `col` of a row of `table`, which must not be NULL; a value of the wrong type or
/// a NULL is corruption.
///
/// The NULL check is explicit: SQLite's driver decodes a NULL as `""`, an empty blob or 0
/// rather than failing. (The schema's `NOT NULL` keeps NULLs out; this catches a damaged file.)
fn get<'r, T>(row: &'r SqliteRow, table: &str, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    let raw = row
        .try_get_raw(col)
        .map_err(|e| corrupt(format!("{table}.{col}: {e}")))?;
    if sqlx::ValueRef::is_null(&raw) {
        return Err(corrupt(format!("{table}.{col} is NULL")));
    }
    row.try_get(col)
        .map_err(|e| corrupt(format!("{table}.{col}: {e}")))
}

/// Reads the nullable column `col` of a row of `table`; a value of the wrong type is corruption.
fn get_opt<'r, T>(row: &'r SqliteRow, table: &str, col: &str) -> Result<Option<T>, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col)
        .map_err(|e| corrupt(format!("{table}.{col}: {e}")))
}

fn blob(row: &SqliteRow, table: &str, col: &str) -> Result<Bytes, StoreError> {
    get::<Vec<u8>>(row, table, col).map(Bytes::from)
}

fn opt_u64(row: &SqliteRow, table: &str, col: &str) -> Result<Option<u64>, StoreError> {
    Ok(get_opt::<i64>(row, table, col)?.map(sql::u64_from_sql))
}

fn message(row: &SqliteRow, table: &str) -> Result<StoredMessage, StoreError> {
    let qos = get::<i64>(row, table, "qos")?;
    let qos: u8 = narrow(qos, "qos")?;
    if qos > 2 {
        return Err(corrupt(format!("{table}.qos {qos} out of range")));
    }
    Ok(StoredMessage {
        topic: get(row, table, "topic")?,
        payload: blob(row, table, "payload")?,
        qos,
        retain: sql::flag_from_sql(get(row, table, "retain")?, "retain")?,
        properties: blob(row, table, "properties")?,
        expires_at_ms: opt_u64(row, table, "expires_at_ms")?,
    })
}

pub(crate) async fn load_retained(pool: &SqlitePool) -> Result<Vec<RetainedMessage>, StoreError> {
    let rows = sqlx::query(sql::LOAD_RETAINED).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(RetainedMessage {
                message: message(row, "retained")?,
                modified_at_ms: sql::u64_from_sql(get(row, "retained", "modified_at_ms")?),
            })
        })
        .collect()
}

/// Every registry record, in SQLite's (binary) order; the caller sorts anyway.
pub(crate) async fn load_registry(pool: &SqlitePool) -> Result<Vec<RegistryRecord>, StoreError> {
    const T: &str = "registry";
    let rows = sqlx::query(sql::LOAD_REGISTRY).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(RegistryRecord {
                kind: get(row, T, "kind")?,
                key: get(row, T, "record_key")?,
                document: blob(row, T, "document")?,
            })
        })
        .collect()
}

pub(crate) async fn get_shadow(
    pool: &SqlitePool,
    thing_name: &str,
    shadow_name: &str,
) -> Result<Option<ShadowRecord>, StoreError> {
    const T: &str = "shadows";
    let row = sqlx::query(sql::GET_SHADOW)
        .bind(thing_name)
        .bind(shadow_name)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(ShadowRecord {
            thing_name: thing_name.to_owned(),
            shadow_name: shadow_name.to_owned(),
            version: sql::u64_from_sql(get(&row, T, "version")?),
            document: get_opt::<Vec<u8>>(&row, T, "document")?.map(Bytes::from),
            updated_at_ms: sql::u64_from_sql(get(&row, T, "updated_at_ms")?),
        })
    })
    .transpose()
}

/// See [`crate::Store::list_shadow_names`]; `after` is "" for from the start.
pub(crate) async fn list_shadow_names(
    pool: &SqlitePool,
    thing_name: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(sql::LIST_SHADOW_NAMES)
        .bind(thing_name)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| get(row, "shadows", "shadow_name"))
        .collect()
}

fn outbound(row: &SqliteRow) -> Result<OutboundRecord, StoreError> {
    const T: &str = "outbound";
    Ok(OutboundRecord {
        client_id: get(row, T, "client_id")?,
        seq: sql::u64_from_sql(get(row, T, "seq")?),
        state: sql::state_from_sql(get(row, T, "state")?, get_opt(row, T, "packet_id")?)?,
        subscription_ids: sql::subscription_ids_from_sql(get(row, T, "subscription_ids")?)?,
        message: message(row, T)?,
    })
}

/// Loads every session with its rows. Rows whose client id has no session record are not
/// returned (the broker writes a session before its rows and deletes them with it).
pub(crate) async fn load_sessions(pool: &SqlitePool) -> Result<Vec<LoadedSession>, StoreError> {
    // One connection, one read transaction: a consistent snapshot across the four tables.
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;

    let mut sessions = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in sqlx::query(sql::LOAD_SESSIONS).fetch_all(&mut *tx).await? {
        const T: &str = "sessions";
        let session = SessionRecord {
            client_id: get(&row, T, "client_id")?,
            protocol: narrow(get(&row, T, "protocol")?, "sessions.protocol")?,
            expiry_interval: narrow(get(&row, T, "expiry_interval")?, "sessions.expiry_interval")?,
            disconnected_at_ms: opt_u64(&row, T, "disconnected_at_ms")?,
        };
        index.insert(session.client_id.clone(), sessions.len());
        sessions.push(LoadedSession {
            session,
            subscriptions: Vec::new(),
            outbound: Vec::new(),
            inbound_qos2: Vec::new(),
        });
    }

    for row in sqlx::query(sql::LOAD_SUBSCRIPTIONS)
        .fetch_all(&mut *tx)
        .await?
    {
        const T: &str = "subscriptions";
        let client_id: String = get(&row, T, "client_id")?;
        let Some(&i) = index.get(&client_id) else {
            continue;
        };
        let subscription_id: Option<i64> = get_opt(&row, T, "subscription_id")?;
        sessions[i].subscriptions.push(SubscriptionRecord {
            client_id,
            filter: get(&row, T, "topic_filter")?,
            options: narrow(get(&row, T, "options")?, "subscriptions.options")?,
            subscription_id: subscription_id
                .map(|id| narrow(id, "subscriptions.subscription_id"))
                .transpose()?,
        });
    }

    let mut rows = sqlx::query(sql::LOAD_OUTBOUND_FIRST)
        .bind(sql::LOAD_OUTBOUND_PAGE)
        .fetch_all(&mut *tx)
        .await?;
    while !rows.is_empty() {
        let mut last = None;
        for row in &rows {
            let record = outbound(row)?;
            last = Some((record.client_id.clone(), sql::u64_to_sql(record.seq)));
            if let Some(&i) = index.get(&record.client_id) {
                sessions[i].outbound.push(record);
            }
        }
        let full_page = i64::try_from(rows.len()).is_ok_and(|n| n == sql::LOAD_OUTBOUND_PAGE);
        rows = match last {
            Some((client_id, seq)) if full_page => {
                sqlx::query(sql::LOAD_OUTBOUND_NEXT)
                    .bind(client_id)
                    .bind(seq)
                    .bind(sql::LOAD_OUTBOUND_PAGE)
                    .fetch_all(&mut *tx)
                    .await?
            }
            _ => Vec::new(),
        };
    }

    for row in sqlx::query(sql::LOAD_INBOUND_QOS2)
        .fetch_all(&mut *tx)
        .await?
    {
        const T: &str = "inbound_qos2";
        let client_id: String = get(&row, T, "client_id")?;
        let Some(&i) = index.get(&client_id) else {
            continue;
        };
        sessions[i].inbound_qos2.push(narrow(
            get(&row, T, "packet_id")?,
            "inbound_qos2.packet_id",
        )?);
    }
    tx.commit().await?;

    for s in &mut sessions {
        // SQL orders `seq` as a signed value; the broker's order is unsigned.
        s.outbound.sort_by_key(|o| o.seq);
    }
    Ok(sessions)
}
