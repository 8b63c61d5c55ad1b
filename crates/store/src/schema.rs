//! The schema, as embedded migrations, and the one place where the SQL dialects differ.
//!
//! Every statement here and in [`crate::sql`] runs unchanged on SQLite and PostgreSQL except
//! for the column types named by [`Dialect`], substituted at open.
//!
//! Integers are `BIGINT` everywhere. `u64` values (sequence numbers, Unix times) are stored as
//! `i64` by bit cast, so every value round-trips; the values the broker uses fit in `i63`, which
//! keeps SQL ordering by `seq` right.
//!
//! Text compares byte-wise in SQLite but by locale under PostgreSQL's usual default collation,
//! so where a load promises an order of text it sorts in Rust ([`crate::Store::load_registry`]);
//! `ORDER BY` in SQL only saves that sort work, or groups rows. Where SQL itself must order or
//! compare text (a page of rows after a key, with a limit: [`crate::Store::list_shadow_names`]),
//! a Rust-side sort cannot help, so the column is declared `{bytewise_text}`, which PostgreSQL
//! makes `TEXT COLLATE "C"` (byte-wise, Rust's `str` order); its index then has that order too.
//!
//! There are no foreign keys: rows of a session are tied to it by `client_id` and removed with it
//! explicitly (`DeleteSession`). A foreign key would make one stray operation (say a
//! subscription written for a session deleted just before) fail the whole group commit, and so
//! the unrelated operations of other clients batched with it.

/// Where SQLite and PostgreSQL disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    #[allow(dead_code)] // The PostgreSQL backend is not written yet.
    Postgres,
}

impl Dialect {
    /// Type of binary columns.
    fn blob(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        }
    }

    /// Type of text columns compared or ordered in SQL, where the order must be byte-wise.
    /// SQLite's default collation (BINARY) already compares bytes; PostgreSQL's "C" does.
    fn bytewise_text(self) -> &'static str {
        match self {
            Dialect::Sqlite => "TEXT",
            Dialect::Postgres => "TEXT COLLATE \"C\"",
        }
    }

    /// The `n`th (1-based) bind parameter of a generated statement. SQLite gets anonymous `?`
    /// (bound in order): its `$n` names are found by a linear search per parameter, which makes
    /// binding a statement with hundreds of parameters quadratic.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Expands the placeholders of a migration statement.
    pub(crate) fn statement(self, template: &str) -> String {
        template
            .replace("{blob}", self.blob())
            .replace("{bytewise_text}", self.bytewise_text())
    }
}

pub(crate) const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
     version BIGINT NOT NULL PRIMARY KEY, \
     applied_at_ms BIGINT NOT NULL)";
pub(crate) const SELECT_VERSION: &str = "SELECT MAX(version) FROM schema_version";
pub(crate) const INSERT_VERSION: &str =
    "INSERT INTO schema_version (version, applied_at_ms) VALUES ($1, $2)";

pub(crate) struct Migration {
    pub(crate) version: i64,
    /// Statements, with `{blob}` for the binary type and `{bytewise_text}` for text ordered
    /// byte-wise in SQL.
    pub(crate) statements: &'static [&'static str],
}

/// Applied in order, each in the transaction that records its version. Never edit a released
/// migration; add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            "CREATE TABLE retained (
            topic TEXT NOT NULL PRIMARY KEY,
            payload {blob} NOT NULL,
            qos BIGINT NOT NULL,
            retain BIGINT NOT NULL,
            properties {blob} NOT NULL,
            expires_at_ms BIGINT,
            modified_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE sessions (
            client_id TEXT NOT NULL PRIMARY KEY,
            protocol BIGINT NOT NULL,
            expiry_interval BIGINT NOT NULL,
            disconnected_at_ms BIGINT
        )",
            "CREATE TABLE subscriptions (
            client_id TEXT NOT NULL,
            topic_filter TEXT NOT NULL,
            options BIGINT NOT NULL,
            subscription_id BIGINT,
            PRIMARY KEY (client_id, topic_filter)
        )",
            // state: 0 queued, 1 published (packet_id set), 2 released (packet_id set).
            // subscription_ids: decimal identifiers separated by commas, '' for none.
            "CREATE TABLE outbound (
            client_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            state BIGINT NOT NULL,
            packet_id BIGINT,
            subscription_ids TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload {blob} NOT NULL,
            qos BIGINT NOT NULL,
            retain BIGINT NOT NULL,
            properties {blob} NOT NULL,
            expires_at_ms BIGINT,
            PRIMARY KEY (client_id, seq)
        )",
            "CREATE TABLE inbound_qos2 (
            client_id TEXT NOT NULL,
            packet_id BIGINT NOT NULL,
            PRIMARY KEY (client_id, packet_id)
        )",
        ],
    },
    Migration {
        version: 2,
        statements: &[
            // Records of the control-plane registry; `document` is opaque (the registry's JSON).
            // `record_key`, not `key`: KEY is a keyword in some dialects.
            "CREATE TABLE registry (
            kind TEXT NOT NULL,
            record_key TEXT NOT NULL,
            document {blob} NOT NULL,
            PRIMARY KEY (kind, record_key)
        )",
        ],
    },
    Migration {
        version: 3,
        statements: &[
            // Device shadows; `document` is opaque (the shadow service's JSON), NULL for a
            // deleted shadow whose row keeps its version. The names are byte-wise text because
            // `list_shadow_names` pages through them in SQL.
            "CREATE TABLE shadows (
            thing_name {bytewise_text} NOT NULL,
            shadow_name {bytewise_text} NOT NULL,
            version BIGINT NOT NULL,
            document {blob},
            updated_at_ms BIGINT NOT NULL,
            PRIMARY KEY (thing_name, shadow_name)
        )",
        ],
    },
];

pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_of_the_migrations_is_expanded() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for migration in MIGRATIONS {
                for statement in migration.statements {
                    let text = dialect.statement(statement);
                    assert!(!text.contains('{'), "{dialect:?}: {text}");
                }
            }
        }
        let shadows = MIGRATIONS
            .iter()
            .flat_map(|m| m.statements.iter())
            .find(|s| s.contains("CREATE TABLE shadows"))
            .expect("the shadows table");
        let postgres = Dialect::Postgres.statement(shadows);
        assert!(
            postgres.contains("shadow_name TEXT COLLATE \"C\" NOT NULL"),
            "{postgres}"
        );
        assert!(postgres.contains("document BYTEA,"), "{postgres}");
        let sqlite = Dialect::Sqlite.statement(shadows);
        assert!(sqlite.contains("shadow_name TEXT NOT NULL"), "{sqlite}");
    }
}
