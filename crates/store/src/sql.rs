//! Statements and value encodings shared by every backend (portable SQL, `$n` placeholders).
//!
//! The hot operations (adding and removing outbound messages) are written with multi-row
//! statements: one round trip to the database for up to [`MAX_ROWS`] operations (see
//! [`crate::plan`]). Their texts
//! are built once per dialect and row count, so the driver's statement cache prepares each only
//! once; their placeholders are the dialect's (see [`Dialect::placeholder`]).

use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::schema::Dialect;
use crate::{OutboundState, StoreError};

pub(crate) use crate::plan::MAX_ROWS;

pub(crate) const PUT_RETAINED: &str = "INSERT INTO retained \
     (topic, payload, qos, retain, properties, expires_at_ms, modified_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, \
     retain = excluded.retain, properties = excluded.properties, \
     expires_at_ms = excluded.expires_at_ms, modified_at_ms = excluded.modified_at_ms";
pub(crate) const DELETE_RETAINED: &str = "DELETE FROM retained WHERE topic = $1";

pub(crate) const PUT_SESSION: &str = "INSERT INTO sessions \
     (client_id, protocol, expiry_interval, disconnected_at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (client_id) DO UPDATE SET protocol = excluded.protocol, \
     expiry_interval = excluded.expiry_interval, disconnected_at_ms = excluded.disconnected_at_ms";
/// Run in this order with the client id as `$1`.
pub(crate) const DELETE_SESSION: [&str; 4] = [
    "DELETE FROM subscriptions WHERE client_id = $1",
    "DELETE FROM outbound WHERE client_id = $1",
    "DELETE FROM inbound_qos2 WHERE client_id = $1",
    "DELETE FROM sessions WHERE client_id = $1",
];

pub(crate) const PUT_SUBSCRIPTION: &str = "INSERT INTO subscriptions \
     (client_id, topic_filter, options, subscription_id) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (client_id, topic_filter) DO UPDATE SET options = excluded.options, \
     subscription_id = excluded.subscription_id";
pub(crate) const DELETE_SUBSCRIPTION: &str =
    "DELETE FROM subscriptions WHERE client_id = $1 AND topic_filter = $2";

pub(crate) const SET_OUTBOUND_STATE: &str =
    "UPDATE outbound SET state = $3, packet_id = $4 WHERE client_id = $1 AND seq = $2";

pub(crate) const PUT_INBOUND_QOS2: &str = "INSERT INTO inbound_qos2 (client_id, packet_id) VALUES ($1, $2) ON CONFLICT (client_id, packet_id) DO NOTHING";
pub(crate) const DELETE_INBOUND_QOS2: &str =
    "DELETE FROM inbound_qos2 WHERE client_id = $1 AND packet_id = $2";

pub(crate) const PUT_REGISTRY: &str = "INSERT INTO registry (kind, record_key, document) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (kind, record_key) DO UPDATE SET document = excluded.document";
pub(crate) const DELETE_REGISTRY: &str = "DELETE FROM registry WHERE kind = $1 AND record_key = $2";

pub(crate) const PUT_SHADOW: &str = "INSERT INTO shadows \
     (thing_name, shadow_name, version, document, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (thing_name, shadow_name) DO UPDATE SET version = excluded.version, \
     document = excluded.document, updated_at_ms = excluded.updated_at_ms";
pub(crate) const DELETE_SHADOW: &str =
    "DELETE FROM shadows WHERE thing_name = $1 AND shadow_name = $2";

/// Columns bound per row of [`put_outbound`], in order.
pub(crate) const OUTBOUND_COLUMNS: usize = 11;

/// `INSERT` (replacing on conflict) of `rows` outbound messages; `rows` in `1..=MAX_ROWS`.
pub(crate) fn put_outbound(dialect: Dialect, rows: usize) -> &'static str {
    static SQLITE: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Sqlite, put_outbound_text));
    static POSTGRES: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Postgres, put_outbound_text));
    pick(dialect, &SQLITE, &POSTGRES, rows)
}

/// `DELETE` of `rows` outbound messages by key (client id, seq, client id, seq, ...).
pub(crate) fn delete_outbound(dialect: Dialect, rows: usize) -> &'static str {
    static SQLITE: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Sqlite, delete_outbound_text));
    static POSTGRES: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Postgres, delete_outbound_text));
    pick(dialect, &SQLITE, &POSTGRES, rows)
}

/// State change of `rows` outbound messages: rows of (client id, seq, state, packet id).
///
/// `UPDATE ... FROM (VALUES ...)`: both SQLite (3.33+) and PostgreSQL name the columns of a
/// `VALUES` list `column1`, `column2`, ...
pub(crate) fn set_outbound_state(dialect: Dialect, rows: usize) -> &'static str {
    static SQLITE: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Sqlite, set_outbound_state_text));
    static POSTGRES: LazyLock<Vec<String>> =
        LazyLock::new(|| build(Dialect::Postgres, set_outbound_state_text));
    pick(dialect, &SQLITE, &POSTGRES, rows)
}

fn build(dialect: Dialect, text: fn(Dialect, usize) -> String) -> Vec<String> {
    (1..=MAX_ROWS).map(|rows| text(dialect, rows)).collect()
}

fn pick(
    dialect: Dialect,
    sqlite: &'static LazyLock<Vec<String>>,
    postgres: &'static LazyLock<Vec<String>>,
    rows: usize,
) -> &'static str {
    let texts = match dialect {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
    };
    &texts[rows.clamp(1, MAX_ROWS) - 1]
}

fn put_outbound_text(dialect: Dialect, rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO outbound (client_id, seq, state, packet_id, subscription_ids, topic, \
         payload, qos, retain, properties, expires_at_ms) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..OUTBOUND_COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&dialect.placeholder(row * OUTBOUND_COLUMNS + col + 1));
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (client_id, seq) DO UPDATE SET state = excluded.state, \
         packet_id = excluded.packet_id, subscription_ids = excluded.subscription_ids, \
         topic = excluded.topic, payload = excluded.payload, qos = excluded.qos, \
         retain = excluded.retain, properties = excluded.properties, \
         expires_at_ms = excluded.expires_at_ms",
    );
    sql
}

fn set_outbound_state_text(dialect: Dialect, rows: usize) -> String {
    let mut sql =
        String::from("UPDATE outbound SET state = v.column3, packet_id = v.column4 FROM (VALUES ");
    for row in 0..rows {
        let p = |col: usize| dialect.placeholder(4 * row + col);
        let sep = if row == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}({}, {}, {}, {})", p(1), p(2), p(3), p(4));
    }
    sql.push_str(") AS v WHERE outbound.client_id = v.column1 AND outbound.seq = v.column2");
    sql
}

fn delete_outbound_text(dialect: Dialect, rows: usize) -> String {
    let mut sql = String::from("DELETE FROM outbound WHERE ");
    for row in 0..rows {
        let sep = if row == 0 { "" } else { " OR " };
        let _ = write!(
            sql,
            "{sep}(client_id = {} AND seq = {})",
            dialect.placeholder(2 * row + 1),
            dialect.placeholder(2 * row + 2)
        );
    }
    sql
}

pub(crate) const LOAD_RETAINED: &str = "SELECT topic, payload, qos, retain, properties, expires_at_ms, \
     modified_at_ms FROM retained ORDER BY topic";
pub(crate) const LOAD_SESSIONS: &str = "SELECT client_id, protocol, expiry_interval, disconnected_at_ms FROM sessions ORDER BY client_id";
pub(crate) const LOAD_SUBSCRIPTIONS: &str = "SELECT client_id, topic_filter, options, subscription_id \
     FROM subscriptions ORDER BY client_id, topic_filter";
/// Rows per page when loading outbound messages (keyset pagination bounds memory).
pub(crate) const LOAD_OUTBOUND_PAGE: i64 = 4096;
pub(crate) const LOAD_OUTBOUND_FIRST: &str = "SELECT client_id, seq, state, packet_id, subscription_ids, topic, \
     payload, qos, retain, properties, expires_at_ms FROM outbound ORDER BY client_id, seq LIMIT $1";
pub(crate) const LOAD_OUTBOUND_NEXT: &str = "SELECT client_id, seq, state, packet_id, subscription_ids, topic, \
     payload, qos, retain, properties, expires_at_ms FROM outbound \
     WHERE (client_id, seq) > ($1, $2) ORDER BY client_id, seq LIMIT $3";
/// The order is only a head start: [`crate::Store::load_registry`] sorts byte-wise itself,
/// since PostgreSQL may collate text by locale.
pub(crate) const LOAD_REGISTRY: &str =
    "SELECT kind, record_key, document FROM registry ORDER BY kind, record_key";
pub(crate) const GET_SHADOW: &str = "SELECT version, document, updated_at_ms FROM shadows \
     WHERE thing_name = $1 AND shadow_name = $2";
/// Live named shadows after `$2` ('' for from the start: it is the classic shadow's name), at
/// most `$3`. Byte-wise in every dialect: the name columns are `{bytewise_text}` (see
/// [`crate::schema`]), and the primary key's index serves the range and the order.
pub(crate) const LIST_SHADOW_NAMES: &str = "SELECT shadow_name FROM shadows \
     WHERE thing_name = $1 AND shadow_name > $2 AND document IS NOT NULL \
     ORDER BY shadow_name LIMIT $3";
pub(crate) const LOAD_INBOUND_QOS2: &str =
    "SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id";

/// `u64` as stored (bit cast; see the schema notes).
pub(crate) fn u64_to_sql(v: u64) -> i64 {
    v as i64
}

pub(crate) fn u64_from_sql(v: i64) -> u64 {
    v as u64
}

/// `(state, packet_id)` columns of an outbound state.
pub(crate) fn state_to_sql(state: OutboundState) -> (i64, Option<i64>) {
    match state {
        OutboundState::Queued => (0, None),
        OutboundState::Published { packet_id } => (1, Some(i64::from(packet_id))),
        OutboundState::Released { packet_id } => (2, Some(i64::from(packet_id))),
    }
}

pub(crate) fn state_from_sql(
    state: i64,
    packet_id: Option<i64>,
) -> Result<OutboundState, StoreError> {
    let packet_id = || -> Result<u16, StoreError> {
        let raw = packet_id
            .ok_or_else(|| corrupt(format!("outbound state {state} without a packet id")))?;
        u16::try_from(raw).map_err(|_| corrupt(format!("outbound packet id {raw} out of range")))
    };
    match state {
        0 => Ok(OutboundState::Queued),
        1 => Ok(OutboundState::Published {
            packet_id: packet_id()?,
        }),
        2 => Ok(OutboundState::Released {
            packet_id: packet_id()?,
        }),
        other => Err(corrupt(format!("unknown outbound state {other}"))),
    }
}

pub(crate) fn subscription_ids_to_sql(ids: &[u32]) -> String {
    let mut text = String::with_capacity(ids.len() * 4);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{id}");
    }
    text
}

pub(crate) fn subscription_ids_from_sql(text: &str) -> Result<Vec<u32>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|id| {
            id.parse::<u32>()
                .map_err(|_| corrupt(format!("bad subscription identifiers {text:?}")))
        })
        .collect()
}

/// A small integer column (QoS, protocol level, options byte, ...).
pub(crate) fn narrow<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| corrupt(format!("{what} {v} out of range")))
}

pub(crate) fn flag_from_sql(v: i64, what: &str) -> Result<bool, StoreError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(corrupt(format!("{what} {v} is not 0 or 1"))),
    }
}

pub(crate) fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_per_row() {
        let pg = put_outbound(Dialect::Postgres, 2);
        assert!(pg.contains("($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"));
        let lite = put_outbound(Dialect::Sqlite, 2);
        assert!(lite.contains(
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON"
        ));
        assert_eq!(
            delete_outbound(Dialect::Postgres, 2),
            "DELETE FROM outbound WHERE (client_id = $1 AND seq = $2) OR (client_id = $3 AND seq = $4)"
        );
    }

    #[test]
    fn subscription_ids_round_trip() {
        for ids in [vec![], vec![1], vec![1, 268_435_455, 7]] {
            assert_eq!(
                subscription_ids_from_sql(&subscription_ids_to_sql(&ids)).ok(),
                Some(ids)
            );
        }
        assert!(subscription_ids_from_sql("1,,2").is_err());
        assert!(subscription_ids_from_sql("x").is_err());
    }

    #[test]
    fn states_round_trip_and_reject_garbage() {
        for s in [
            OutboundState::Queued,
            OutboundState::Published { packet_id: 65535 },
            OutboundState::Released { packet_id: 1 },
        ] {
            let (a, b) = state_to_sql(s);
            assert_eq!(state_from_sql(a, b).ok(), Some(s));
        }
        assert!(state_from_sql(3, None).is_err());
        assert!(state_from_sql(1, None).is_err());
        assert!(state_from_sql(1, Some(70000)).is_err());
    }
}
