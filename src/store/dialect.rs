//! Everything that differs between SQLite's and PostgreSQL's SQL, named in
//! one place. The store's statements are written once, in PostgreSQL's
//! form (`$1` placeholders), and take their few dialect-specific parts from
//! here; a reader of this file sees all that really differs:
//!
//! - placeholders: SQLite reads `$1` as a *named* parameter, numbered by
//!   its first appearance, so a statement is rewritten to `?1` for it;
//! - a JSON array of objects as a table: `jsonb_to_recordset` with typed
//!   columns on PostgreSQL, `jsonb_each` and `->>` on SQLite;
//! - a list of ids: an array and `= ANY` on PostgreSQL, a JSON array and
//!   `jsonb_each` on SQLite;
//! - row locks: `FOR UPDATE [SKIP LOCKED]` on PostgreSQL; SQLite has none
//!   and needs none (a writer holds the whole file from `BEGIN IMMEDIATE`);
//! - `GREATEST` is SQLite's scalar `MAX`;
//! - SQLite keeps the order of a `CROSS JOIN`, PostgreSQL plans every join;
//! - a commit that does not wait for the WAL flush, on PostgreSQL only;
//! - many typed rows in one write: arrays through `UNNEST` on PostgreSQL,
//!   a multi-row `VALUES` of anonymous parameters on SQLite;
//! - a JSON object aggregated from rows (`jsonb_object_agg` /
//!   `json_group_object`) and read back as key/value rows;
//! - a failed statement ends a PostgreSQL transaction (a savepoint guards
//!   one that may fail), only itself on SQLite;
//! - the copy between databases: a row as a JSON object, rows shaped like a
//!   table, and PostgreSQL's sequences moved past the copied ids.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A table of the objects in the JSON array bound at `param`, with the
    /// named columns of the given SQL types, under `alias`.
    pub fn json_rows(self, param: &str, columns: &[(&str, &str)], alias: &str) -> String {
        match self {
            Dialect::Postgres => {
                let cols: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
                format!(
                    "jsonb_to_recordset({param}::jsonb) AS {alias}({})",
                    cols.join(", ")
                )
            }
            Dialect::Sqlite => {
                let cols: Vec<String> = columns
                    .iter()
                    .map(|(n, _)| format!("j.value->>'{n}' AS {n}"))
                    .collect();
                format!(
                    "(SELECT {} FROM jsonb_each({param}) AS j) AS {alias}",
                    cols.join(", ")
                )
            }
        }
    }

    /// A table of the arrays in the JSON array bound at `param`: element
    /// `i` of each becomes the `i`th named column, of the given SQL type
    /// (`jsonb` keeps it JSON), under `alias`.
    pub fn json_tuples(self, param: &str, columns: &[(&str, &str)], alias: &str) -> String {
        let cols: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| match (self, *ty) {
                (Dialect::Postgres, "jsonb") => format!("j->{i} AS {name}"),
                (Dialect::Postgres, "text") => format!("j->>{i} AS {name}"),
                (Dialect::Postgres, ty) => format!("(j->>{i})::{ty} AS {name}"),
                (Dialect::Sqlite, "jsonb") => format!("j.value->{i} AS {name}"),
                (Dialect::Sqlite, _) => format!("j.value->>{i} AS {name}"),
            })
            .collect();
        let from = match self {
            Dialect::Postgres => format!("jsonb_array_elements({param}::jsonb) AS j"),
            Dialect::Sqlite => format!("jsonb_each({param}) AS j"),
        };
        format!("(SELECT {} FROM {from}) AS {alias}", cols.join(", "))
    }

    /// The JSON object of `key` to `value` over a group's rows, `{}` for
    /// none, comparable with an object from a [`json_tuples`](Self::json_tuples)
    /// `jsonb` column: PostgreSQL compares `jsonb` whatever the key order;
    /// SQLite compares the text, so its keys are put in name order (the
    /// order the daemon writes them in).
    pub fn json_object_agg(self, key: &str, value: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("COALESCE(jsonb_object_agg({key}, {value}), '{{}}'::jsonb)")
            }
            Dialect::Sqlite => format!("json_group_object({key}, {value} ORDER BY {key})"),
        }
    }

    /// The key/value rows of a JSON object, values as text.
    pub fn json_entries(self, object: &str) -> String {
        match self {
            Dialect::Postgres => format!("jsonb_each_text({object})"),
            Dialect::Sqlite => format!("jsonb_each({object})"),
        }
    }

    /// `column` is one of the values bound at `param` (a list of ids or of
    /// text, bound with [`Arg::Ids`](super::sql::Arg::Ids) or
    /// [`Arg::Texts`](super::sql::Arg::Texts)).
    pub fn in_list(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Postgres => format!("{column} = ANY({param})"),
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM jsonb_each({param}))"),
        }
    }

    /// Locks the selected rows until the transaction ends.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => "FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// Locks the selected rows, passing over those another transaction
    /// holds (several daemons claiming from one queue).
    pub fn for_update_skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }

    /// The larger of two values (a scalar function, not the aggregate).
    pub fn greatest(self) -> &'static str {
        match self {
            Dialect::Postgres => "GREATEST",
            Dialect::Sqlite => "MAX",
        }
    }

    /// An expression that makes the current transaction commit without
    /// waiting for its WAL flush, where the engine offers that: for soft
    /// state other sessions must see at once. SQLite has no such switch
    /// (its commits are seen at once).
    pub fn commit_unflushed(self) -> &'static str {
        match self {
            Dialect::Postgres => "set_config('synchronous_commit', 'off', true)",
            Dialect::Sqlite => "1",
        }
    }

    /// A JSON object of the named columns, as text.
    pub fn json_object(self, columns: &[&str]) -> String {
        let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
        match self {
            Dialect::Postgres => format!("json_build_object({})::text", pairs.join(", ")),
            Dialect::Sqlite => format!("json_object({})", pairs.join(", ")),
        }
    }

    /// A table of the objects in the JSON array bound at `param`, shaped
    /// like the rows of `table` (named `r`).
    pub fn json_table_rows(self, param: &str, table: &str, columns: &[&str]) -> String {
        match self {
            Dialect::Postgres => {
                format!("jsonb_populate_recordset(NULL::{table}, {param}::jsonb) AS r")
            }
            Dialect::Sqlite => {
                let typed: Vec<(&str, &str)> = columns.iter().map(|c| (*c, "")).collect();
                self.json_rows(param, &typed, "r")
            }
        }
    }

    /// What makes new rows of `tables` take ids after the largest copied
    /// one: PostgreSQL's sequences do not move when ids are given; SQLite's
    /// `INTEGER PRIMARY KEY` continues after the largest id by itself.
    pub fn after_copy(self, tables: &[&str]) -> Vec<String> {
        match self {
            Dialect::Postgres => tables
                .iter()
                .map(|t| {
                    format!(
                        "SELECT setval(pg_get_serial_sequence('{t}', 'id'), \
                         GREATEST((SELECT MAX(id) FROM {t}), 1))"
                    )
                })
                .collect(),
            Dialect::Sqlite => vec![],
        }
    }

    /// The rows of a multi-row write: each row the typed `columns`, then
    /// one more value for every row, bound first (`$1`). PostgreSQL takes
    /// one array per column through `UNNEST` (one statement whatever the
    /// number of rows); SQLite a `VALUES` row of parameters per row (see
    /// [`Dialect::rows_per_write`]), anonymous: SQLite finds a numbered
    /// parameter's name by a linear search, which made binding a statement
    /// of thousands of `?NNN` quadratic (30 s for the scan of 200k rows
    /// instead of 1 s). Bound with an engine's `bind_write_rows`.
    pub fn write_rows(self, columns: &[(&str, &str)], rows: usize) -> String {
        match self {
            Dialect::Postgres => {
                let arrays: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 2))
                    .collect();
                format!("SELECT r.*, $1 FROM UNNEST({}) AS r", arrays.join(", "))
            }
            Dialect::Sqlite => {
                let row = format!("({})", vec!["?"; columns.len()].join(", "));
                // All anonymous: sqlx numbers anonymous parameters apart
                // from numbered ones.
                format!(
                    "SELECT v.*, ? FROM (VALUES {}) AS v WHERE true",
                    vec![row.as_str(); rows].join(", ")
                )
            }
        }
    }

    /// How many rows one [`write_rows`](Self::write_rows) statement takes:
    /// SQLite binds a parameter per value (at most 32,766 to a statement;
    /// each size is prepared once and cached), PostgreSQL an array per
    /// column.
    pub fn rows_per_write(self) -> usize {
        match self {
            Dialect::Postgres => usize::MAX,
            Dialect::Sqlite => 250,
        }
    }

    /// Whether a failed statement ends its whole transaction (PostgreSQL:
    /// a savepoint must guard a statement that may fail and be retried),
    /// or only itself (SQLite: a savepoint there only costs a journal of
    /// every page the statements under it change).
    pub fn failure_aborts_transaction(self) -> bool {
        match self {
            Dialect::Postgres => true,
            Dialect::Sqlite => false,
        }
    }

    /// An inner join whose left side stays the outer loop: SQLite's
    /// planner keeps the order of a `CROSS JOIN`; PostgreSQL's chooses for
    /// itself (and allows no `ON` after `CROSS JOIN`).
    pub fn join_in_order(self) -> &'static str {
        match self {
            Dialect::Postgres => "JOIN",
            Dialect::Sqlite => "CROSS JOIN",
        }
    }

    /// The statement as this dialect reads its placeholders.
    pub fn placeholders(self, sql: &str) -> String {
        match self {
            Dialect::Postgres => sql.to_string(),
            // Only a `$` before a digit: a JSON path (`'$.a'`) stays.
            Dialect::Sqlite => {
                let mut out = String::with_capacity(sql.len());
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    let placeholder = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
                    out.push(if placeholder { '?' } else { c });
                }
                out
            }
        }
    }
}

/// A named statement: its text in PostgreSQL's form, or a function of the
/// dialect that builds it, made once per dialect on first use.
pub struct Sql {
    source: Source,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

enum Source {
    Text(&'static str),
    Built(fn(Dialect) -> String),
}

impl Sql {
    pub const fn text(sql: &'static str) -> Self {
        Self::from(Source::Text(sql))
    }

    pub const fn built(build: fn(Dialect) -> String) -> Self {
        Self::from(Source::Built(build))
    }

    const fn from(source: Source) -> Self {
        Self {
            source,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    pub fn get(&self, dialect: Dialect) -> &str {
        let cell = match dialect {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        };
        cell.get_or_init(|| {
            let sql = match &self.source {
                Source::Text(sql) => (*sql).to_string(),
                Source::Built(build) => build(dialect),
            };
            dialect.placeholders(&sql)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_numbered_placeholders_whatever_their_order() {
        let sql = Sql::text("UPDATE t SET a = $2 WHERE id = $1 AND b = $2 AND c ->> '$.x' = $3");
        assert_eq!(
            sql.get(Dialect::Sqlite),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?2 AND c ->> '$.x' = ?3"
        );
        assert_eq!(
            sql.get(Dialect::Postgres),
            "UPDATE t SET a = $2 WHERE id = $1 AND b = $2 AND c ->> '$.x' = $3"
        );
    }

    #[test]
    fn typed_rows_take_an_array_per_column_or_a_parameter_per_value() {
        const COLS: [(&str, &str); 2] = [("id", "bigint"), ("name", "text")];
        assert_eq!(
            Sql::built(|d| d.write_rows(&COLS, 2)).get(Dialect::Postgres),
            "SELECT r.*, $1 FROM UNNEST($2::bigint[], $3::text[]) AS r"
        );
        assert_eq!(
            Sql::built(|d| d.write_rows(&COLS, 2)).get(Dialect::Sqlite),
            "SELECT v.*, ? FROM (VALUES (?, ?), (?, ?)) AS v WHERE true"
        );
    }

    #[test]
    fn a_json_table_has_the_same_columns_on_both_dialects() {
        let cols = [("id", "bigint"), ("name", "text")];
        assert_eq!(
            Dialect::Postgres.json_rows("$1", &cols, "r"),
            "jsonb_to_recordset($1::jsonb) AS r(id bigint, name text)"
        );
        assert_eq!(
            Dialect::Sqlite.json_rows("$1", &cols, "r"),
            "(SELECT j.value->>'id' AS id, j.value->>'name' AS name FROM jsonb_each($1) AS j) AS r"
        );
    }
}
