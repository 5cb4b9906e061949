//! One small query interface over both engines, so that each service method is written once.
//!
//! Statements are the same SQL text on SQLite and PostgreSQL (`$1`-style parameters, which sqlx
//! maps by number on SQLite too). Arguments are collected as [`Arg`] values and bound to the
//! concrete engine when the statement runs; rows stay engine rows ([`DbRow`]) and are decoded by
//! column index with the type the caller expects. The bulk hot paths (charging) bypass this and
//! build engine-specific statements.

use std::borrow::Cow;
use std::fmt::Write as _;

use smallvec::SmallVec;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite, Transaction};

use crate::{Store, StoreError};

/// Most rows per multi-row statement on SQLite.
const ROWS_PER_STATEMENT: usize = 1_000;
/// SQLite's limit on a statement's parameters (`SQLITE_MAX_VARIABLE_NUMBER` since 3.32).
const SQLITE_MAX_PARAMETERS: usize = 32_766;

/// One bound argument.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
    /// A NULL bytes value.
    OptBytes,
    /// PostgreSQL only: an array for `= ANY($n)`.
    I64Array(Vec<i64>),
    /// PostgreSQL only: an array for `= ANY($n)`.
    TextArray(Vec<String>),
    /// PostgreSQL only: one column of a bulk statement (see [`Tx::bulk`]).
    OptI64Array(Vec<Option<i64>>),
    /// PostgreSQL only: one column of a bulk statement.
    OptTextArray(Vec<Option<String>>),
    /// PostgreSQL only: one column of a bulk statement.
    BytesArray(Vec<Vec<u8>>),
}

/// The type of one column of a bulk statement: PostgreSQL needs it to name the array's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Int,
    Text,
    Bytes,
}

impl Col {
    fn pg_array(self) -> &'static str {
        match self {
            Col::Int => "bigint[]",
            Col::Text => "text[]",
            Col::Bytes => "bytea[]",
        }
    }
}

/// Collects the values of a bulk statement's rows: in row order as bound parameters on SQLite
/// (`VALUES (?, …), …`), as one array per column on PostgreSQL (`UNNEST($1::bigint[], …)`:
/// one statement of a few parameters whatever the row count, where 10,000 rows of numbered
/// parameters cost PostgreSQL more to parse and plan than to write).
#[derive(Debug)]
pub(crate) struct RowSink {
    inner: Sink,
    cols: &'static [Col],
    next: usize,
    /// A value pushed into a column of another type: a programming error, reported by
    /// [`Tx::bulk`] instead of binding garbage.
    mismatch: bool,
}

#[derive(Debug)]
enum Sink {
    Flat(Box<Q>),
    Columns(Vec<Arg>),
    /// PostgreSQL's `COPY … FROM STDIN` text format: one line per row, tab-separated.
    Copy(Vec<u8>),
}

/// Appends `v` as a field of `COPY`'s text format: the separator, the row end and the escape
/// character are escaped; everything else passes as it is (the connection speaks UTF-8).
fn copy_text(out: &mut Vec<u8>, v: &str) {
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

impl RowSink {
    fn advance(&mut self) {
        self.next = (self.next + 1) % self.cols.len().max(1);
        if let Sink::Copy(out) = &mut self.inner {
            out.push(if self.next == 0 { b'\n' } else { b'\t' });
        }
    }

    /// The `COPY` buffer, when the next value must be of type `col`; otherwise records the
    /// mismatch and gives `None`.
    fn copy_field(&mut self, col: Col) -> Option<&mut Vec<u8>> {
        let matches = self.cols.get(self.next) == Some(&col);
        match &mut self.inner {
            Sink::Copy(out) if matches => Some(out),
            Sink::Copy(_) => {
                self.mismatch = true;
                None
            }
            _ => None,
        }
    }

    pub fn push_opt_i64(&mut self, v: Option<i64>) {
        match &mut self.inner {
            Sink::Flat(q) => q.push_opt_i64(v),
            Sink::Columns(c) => match c.get_mut(self.next) {
                Some(Arg::OptI64Array(a)) => a.push(v),
                _ => self.mismatch = true,
            },
            Sink::Copy(_) => {
                if let Some(out) = self.copy_field(Col::Int) {
                    match v {
                        Some(v) => {
                            let _ = write!(CopyOut(out), "{v}");
                        }
                        None => out.extend_from_slice(b"\\N"),
                    }
                }
            }
        }
        self.advance();
    }

    pub fn push_i64(&mut self, v: i64) {
        self.push_opt_i64(Some(v));
    }

    pub fn push_opt_text(&mut self, v: Option<String>) {
        match &mut self.inner {
            Sink::Flat(q) => q.push_opt_text(v),
            Sink::Columns(c) => match c.get_mut(self.next) {
                Some(Arg::OptTextArray(a)) => a.push(v),
                _ => self.mismatch = true,
            },
            Sink::Copy(_) => {
                if let Some(out) = self.copy_field(Col::Text) {
                    match v {
                        Some(v) => copy_text(out, &v),
                        None => out.extend_from_slice(b"\\N"),
                    }
                }
            }
        }
        self.advance();
    }

    pub fn push_text(&mut self, v: impl Into<String>) {
        self.push_opt_text(Some(v.into()));
    }

    pub fn push_bytes(&mut self, v: &[u8]) {
        match &mut self.inner {
            Sink::Flat(q) => q.push_bytes(v),
            Sink::Columns(c) => match c.get_mut(self.next) {
                Some(Arg::BytesArray(a)) => a.push(v.to_vec()),
                _ => self.mismatch = true,
            },
            Sink::Copy(_) => {
                if let Some(out) = self.copy_field(Col::Bytes) {
                    // bytea's hex input, its backslash escaped for COPY.
                    out.extend_from_slice(b"\\\\x");
                    for b in v {
                        let _ = write!(CopyOut(out), "{b:02x}");
                    }
                }
            }
        }
        self.advance();
    }
}

/// `fmt::Write` into a `COPY` buffer, for numbers.
struct CopyOut<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for CopyOut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A statement with its arguments, built with [`q`] or [`q_composed`].
#[derive(Debug)]
pub(crate) struct Q {
    sql: Cow<'static, str>,
    args: SmallVec<[Arg; 8]>,
}

/// Starts a statement from constant SQL text.
pub(crate) fn q(sql: &'static str) -> Q {
    Q {
        sql: Cow::Borrowed(sql),
        args: SmallVec::new(),
    }
}

/// Starts a statement composed at run time. Only for SQL assembled from constant fragments (a
/// lock suffix, a list of placeholders): values always go through the bind methods.
pub(crate) fn q_composed(sql: String) -> Q {
    Q {
        sql: Cow::Owned(sql),
        args: SmallVec::new(),
    }
}

impl Q {
    pub fn i64(mut self, v: i64) -> Self {
        self.args.push(Arg::I64(Some(v)));
        self
    }
    pub fn opt_i64(mut self, v: Option<i64>) -> Self {
        self.args.push(Arg::I64(v));
        self
    }
    pub fn text(mut self, v: impl Into<String>) -> Self {
        self.args.push(Arg::Text(Some(v.into())));
        self
    }
    pub fn opt_text(mut self, v: Option<impl Into<String>>) -> Self {
        self.args.push(Arg::Text(v.map(Into::into)));
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.args.push(Arg::Bytes(v.to_vec()));
        self
    }
    pub fn opt_bytes(mut self, v: Option<&[u8]>) -> Self {
        self.args.push(match v {
            Some(b) => Arg::Bytes(b.to_vec()),
            // A NULL of bytea type, so `COALESCE($n, raw)` type-checks on PostgreSQL.
            None => Arg::OptBytes,
        });
        self
    }
    /// Reserves room for `n` more arguments (bulk statements).
    pub fn reserve(&mut self, n: usize) {
        self.args.reserve(n);
    }
    pub fn push_opt_i64(&mut self, v: Option<i64>) {
        self.args.push(Arg::I64(v));
    }
    pub fn push_opt_text(&mut self, v: Option<String>) {
        self.args.push(Arg::Text(v));
    }
    pub fn push_bytes(&mut self, v: &[u8]) {
        self.args.push(Arg::Bytes(v.to_vec()));
    }

    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for a in self.args {
            query = match a {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
                Arg::OptBytes => query.bind(None::<Vec<u8>>),
                // Never built for SQLite (see `Tx::in_list`, `Tx::bulk`); NULL if they were.
                Arg::I64Array(_)
                | Arg::TextArray(_)
                | Arg::OptI64Array(_)
                | Arg::OptTextArray(_)
                | Arg::BytesArray(_) => query.bind(None::<i64>),
            };
        }
        query
    }

    fn pg(self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for a in self.args {
            query = match a {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
                Arg::OptBytes => query.bind(None::<Vec<u8>>),
                Arg::I64Array(v) => query.bind(v),
                Arg::TextArray(v) => query.bind(v),
                Arg::OptI64Array(v) => query.bind(v),
                Arg::OptTextArray(v) => query.bind(v),
                Arg::BytesArray(v) => query.bind(v),
            };
        }
        query
    }

    /// `(` `$n, …` `)` groups for `rows` rows of `cols` columns, numbering after `first`
    /// arguments: how bulk statements are built (values still go through binds).
    fn numbered_placeholders(first: usize, rows: usize, cols: usize) -> String {
        let mut out = String::with_capacity(rows * cols * 6);
        let mut n = first;
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push('(');
            for c in 0..cols {
                if c > 0 {
                    out.push_str(", ");
                }
                n += 1;
                out.push('$');
                // Writing to a String cannot fail.
                let _ = write!(out, "{n}");
            }
            out.push(')');
        }
        out
    }
}

/// A row of either engine, decoded by column index.
#[derive(Debug)]
pub(crate) enum DbRow {
    Sqlite(SqliteRow),
    Pg(PgRow),
}

impl DbRow {
    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        Ok(match self {
            DbRow::Sqlite(r) => r.try_get(i)?,
            DbRow::Pg(r) => r.try_get(i)?,
        })
    }
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            DbRow::Sqlite(r) => r.try_get(i)?,
            DbRow::Pg(r) => r.try_get(i)?,
        })
    }
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(match self {
            DbRow::Sqlite(r) => r.try_get(i)?,
            DbRow::Pg(r) => r.try_get(i)?,
        })
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(match self {
            DbRow::Sqlite(r) => r.try_get(i)?,
            DbRow::Pg(r) => r.try_get(i)?,
        })
    }
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(match self {
            DbRow::Sqlite(r) => r.try_get(i)?,
            DbRow::Pg(r) => r.try_get(i)?,
        })
    }
}

/// Binds every row of `rows` into a sink over `inner` and hands the filled sink back, or an
/// error if a value did not match its column or a row was left short.
fn fill_sink<T>(
    inner: Sink,
    cols: &'static [Col],
    rows: &[T],
    bind: &mut impl FnMut(&mut RowSink, &T),
) -> Result<Sink, StoreError> {
    let mut sink = RowSink {
        inner,
        cols,
        next: 0,
        mismatch: false,
    };
    for r in rows {
        bind(&mut sink, r);
    }
    if sink.mismatch || sink.next != 0 {
        return Err(StoreError::Corrupt(
            "a bulk statement's values do not match its columns".into(),
        ));
    }
    Ok(sink.inner)
}

/// Writes prepared while a transaction's connection is busy, to be run after it
/// ([`Tx::insert_writes`], [`Tx::run_writes`]).
#[derive(Debug)]
pub(crate) enum Writes {
    Statements(Vec<Q>),
    Copy { sql: String, data: Vec<u8> },
}

/// An open transaction on either engine. Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    /// The SQLite connection under the transaction, for paths that step rows through rusqlite
    /// ([`toll_sqlite_handle::with_rusqlite`]); `None` on PostgreSQL.
    pub(crate) fn sqlite_connection(&mut self) -> Option<&mut sqlx::SqliteConnection> {
        match self {
            Tx::Sqlite(c) => Some(&mut **c),
            Tx::Pg(_) => None,
        }
    }

    /// Placeholders for `rows` × `cols` arguments of a bulk statement, in groups of `cols` when
    /// `cols > 1`. PostgreSQL numbers them (`$n`, after `first` earlier arguments); SQLite gets
    /// anonymous `?`, because looking up thousands of numbered names costs it quadratic time
    /// (`sqlite3_bind_parameter_name` walks a list). A bulk statement therefore binds only its
    /// rows' values, in order, and writes constants such as the tenant id as integer literals.
    pub fn placeholders(&self, first: usize, rows: usize, cols: usize) -> String {
        match self {
            Tx::Pg(_) => {
                let text = Q::numbered_placeholders(first, rows, cols);
                if cols == 1 {
                    text.replace(['(', ')'], "")
                } else {
                    text
                }
            }
            Tx::Sqlite(_) => {
                let group = if cols == 1 {
                    "?".to_string()
                } else {
                    format!("({})", vec!["?"; cols].join(", "))
                };
                vec![group.as_str(); rows].join(", ")
            }
        }
    }

    /// Runs a multi-row statement over `rows` and returns what it returns (`RETURNING`).
    /// `sql` receives the row source to splice in, `VALUES …` or `SELECT * FROM UNNEST(…)`,
    /// both valid after `INSERT INTO t (…)` and inside `WITH v (…) AS (…)`; `bind` pushes one
    /// row's values in `cols` order. SQLite runs it in chunks under its parameter limit;
    /// PostgreSQL in one statement with one array per column.
    pub async fn bulk<T>(
        &mut self,
        rows: &[T],
        cols: &'static [Col],
        sql: impl Fn(&str) -> String,
        bind: impl FnMut(&mut RowSink, &T),
    ) -> Result<Vec<DbRow>, StoreError> {
        let mut out = Vec::new();
        for query in self.bulk_queries(rows, cols, sql, bind)? {
            out.extend(self.all(query).await?);
        }
        Ok(out)
    }

    /// The statements [`Tx::bulk`] runs, built but not run: for a caller that wants to do
    /// other work while the database executes them.
    pub fn bulk_queries<T>(
        &self,
        rows: &[T],
        cols: &'static [Col],
        sql: impl Fn(&str) -> String,
        mut bind: impl FnMut(&mut RowSink, &T),
    ) -> Result<Vec<Q>, StoreError> {
        let mut out = Vec::new();
        if rows.is_empty() {
            return Ok(out);
        }
        let chunk_rows = match self {
            // Wide rows (a CDR has 33 columns) get fewer rows per statement: columns × rows
            // must stay under SQLite's parameter limit.
            Tx::Sqlite(_) => ROWS_PER_STATEMENT.min(SQLITE_MAX_PARAMETERS / cols.len().max(1)),
            Tx::Pg(_) => rows.len(),
        };
        for chunk in rows.chunks(chunk_rows) {
            let (source, inner) = match self {
                Tx::Sqlite(_) => {
                    let mut q = q_composed(String::new());
                    q.reserve(chunk.len() * cols.len());
                    (
                        format!("VALUES {}", self.placeholders(0, chunk.len(), cols.len())),
                        Sink::Flat(Box::new(q)),
                    )
                }
                Tx::Pg(_) => {
                    let arrays = cols
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("${}::{}", i + 1, c.pg_array()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let columns = cols
                        .iter()
                        .map(|c| match c {
                            Col::Int => Arg::OptI64Array(Vec::with_capacity(chunk.len())),
                            Col::Text => Arg::OptTextArray(Vec::with_capacity(chunk.len())),
                            Col::Bytes => Arg::BytesArray(Vec::with_capacity(chunk.len())),
                        })
                        .collect();
                    (
                        format!("SELECT * FROM UNNEST({arrays})"),
                        Sink::Columns(columns),
                    )
                }
            };
            let mut query = match fill_sink(inner, cols, chunk, &mut bind)? {
                Sink::Flat(q) => *q,
                Sink::Columns(c) => {
                    let mut q = q_composed(String::new());
                    q.args.extend(c);
                    q
                }
                Sink::Copy(_) => {
                    return Err(StoreError::Corrupt(
                        "a COPY buffer in a bulk statement".into(),
                    ));
                }
            };
            query.sql = Cow::Owned(sql(&source));
            out.push(query);
        }
        Ok(out)
    }

    /// The writes that insert `rows` into `target` (a table and its column list): multi-row
    /// `INSERT`s on SQLite ([`Tx::bulk_queries`]); one `COPY … FROM STDIN` on PostgreSQL, which
    /// costs its server less per row than `INSERT … SELECT` (75 against 102 ms for 50,000
    /// charge rows in psql; no arrays to build and unpack). Only for plain inserts: `COPY` has
    /// no `ON CONFLICT`, so a conflicting row fails the whole transaction.
    pub fn insert_writes<T>(
        &self,
        rows: &[T],
        cols: &'static [Col],
        target: &str,
        mut bind: impl FnMut(&mut RowSink, &T),
    ) -> Result<Writes, StoreError> {
        match self {
            Tx::Sqlite(_) => Ok(Writes::Statements(self.bulk_queries(
                rows,
                cols,
                |values| format!("INSERT INTO {target} {values}"),
                bind,
            )?)),
            Tx::Pg(_) => {
                let buffer = Sink::Copy(Vec::with_capacity(rows.len() * cols.len() * 8));
                let Sink::Copy(data) = fill_sink(buffer, cols, rows, &mut bind)? else {
                    return Err(StoreError::Corrupt("COPY buffer lost".into()));
                };
                Ok(Writes::Copy {
                    sql: format!("COPY {target} FROM STDIN"),
                    data,
                })
            }
        }
    }

    /// Runs what [`Tx::insert_writes`] prepared.
    pub async fn run_writes(&mut self, writes: Writes) -> Result<(), StoreError> {
        match writes {
            Writes::Statements(queries) => {
                for query in queries {
                    self.exec(query).await?;
                }
                Ok(())
            }
            Writes::Copy { data, .. } if data.is_empty() => Ok(()),
            Writes::Copy { sql, data } => match self {
                Tx::Pg(t) => {
                    let mut copy = t.copy_in_raw(&sql).await?;
                    if let Err(e) = copy.send(data).await {
                        // The connection must leave copy mode before anything else; the
                        // transaction fails with the send's error either way.
                        let _ = copy.abort("send failed").await;
                        return Err(e.into());
                    }
                    copy.finish().await?;
                    Ok(())
                }
                Tx::Sqlite(_) => Err(StoreError::Corrupt(
                    "COPY prepared for a PostgreSQL transaction ran on SQLite".into(),
                )),
            },
        }
    }

    /// A set-membership test on `column` for `n` values bound with [`Tx::bind_set_i64`] or
    /// [`Tx::bind_set_text`] (the statement's only arguments): `IN (?, …)` on SQLite, which probes
    /// its index per value; a semi-join with one unnested array on PostgreSQL, which it can hash
    /// or probe by index (a parameter list, `IN ($1, …)` or `= ANY($1)`, is compared linearly
    /// against every row scanned: quadratic on a growing table).
    pub fn in_list(&self, column: &str, n: usize) -> String {
        match self {
            Tx::Pg(_) => format!("{column} IN (SELECT unnest($1))"),
            Tx::Sqlite(_) => format!("{column} IN ({})", self.placeholders(0, n, 1)),
        }
    }

    pub fn bind_set_i64(&self, q: &mut Q, values: &[i64]) {
        match self {
            Tx::Pg(_) => q.args.push(Arg::I64Array(values.to_vec())),
            Tx::Sqlite(_) => q.args.extend(values.iter().map(|v| Arg::I64(Some(*v)))),
        }
    }

    pub fn bind_set_text(&self, q: &mut Q, values: &[&str]) {
        match self {
            Tx::Pg(_) => q.args.push(Arg::TextArray(
                values.iter().map(|v| (*v).to_string()).collect(),
            )),
            Tx::Sqlite(_) => q
                .args
                .extend(values.iter().map(|v| Arg::Text(Some((*v).to_string())))),
        }
    }

    /// The suffix that locks rows a write depends on: `FOR UPDATE` on PostgreSQL; nothing on
    /// SQLite, whose `BEGIN IMMEDIATE` already holds the database's write lock.
    pub fn for_update(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Pg(_) => " FOR UPDATE",
        }
    }

    pub async fn exec(&mut self, q: Q) -> Result<u64, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => q.sqlite().execute(&mut **t).await?.rows_affected(),
            Tx::Pg(t) => q.pg().execute(&mut **t).await?.rows_affected(),
        })
    }

    pub async fn all(&mut self, q: Q) -> Result<Vec<DbRow>, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => q
                .sqlite()
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(DbRow::Sqlite)
                .collect(),
            Tx::Pg(t) => q
                .pg()
                .fetch_all(&mut **t)
                .await?
                .into_iter()
                .map(DbRow::Pg)
                .collect(),
        })
    }

    /// The rows of `SELECT {columns} {rest}` (`rest` from `FROM` on, without `ORDER BY`: the
    /// order is unspecified), each decoded as `T` from the sequence of its columns in order,
    /// e.g. a tuple. For large reads of plain columns (integers, text, NULL); `$n` arguments in
    /// `rest` are bound from `query`'s arguments as usual.
    ///
    /// Each engine gets the form that is cheap where its bottleneck is. SQLite packs all rows
    /// into one JSON text, so the whole result crosses into Rust as one value: sqlx's SQLite
    /// driver otherwise copies every value of every row into its own allocation and hands rows
    /// over one by one from its worker thread, which made reading 150,000 allowance buckets for
    /// a cold charging batch cost about 3.5 µs a row. PostgreSQL streams ordinary binary rows,
    /// decoded straight into `T` ([`PgRowDe`]) while the server still produces the next ones:
    /// building the same JSON cost its server (the charging bottleneck) about 1 µs a row, 684
    /// against 283 ms for a tenant's 400,000 buckets in `EXPLAIN ANALYZE`.
    pub async fn packed<T: serde::de::DeserializeOwned>(
        &mut self,
        columns: &[&str],
        rest: &str,
        mut query: Q,
    ) -> Result<Vec<T>, StoreError> {
        let list = columns.join(", ");
        match self {
            Tx::Sqlite(_) => {
                query.sql = Cow::Owned(format!(
                    "SELECT json_group_array(json_array({list})) {rest}"
                ));
                let text = self.one(query).await?.text(0)?;
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))
            }
            Tx::Pg(t) => {
                use futures_util::TryStreamExt as _;
                query.sql = Cow::Owned(format!("SELECT {list} {rest}"));
                let mut out = Vec::new();
                let mut rows = query.pg().fetch(&mut **t);
                while let Some(row) = rows.try_next().await? {
                    out.push(
                        T::deserialize(PgRowDe(&row))
                            .map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))?,
                    );
                }
                Ok(out)
            }
        }
    }

    pub async fn opt(&mut self, q: Q) -> Result<Option<DbRow>, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => q
                .sqlite()
                .fetch_optional(&mut **t)
                .await?
                .map(DbRow::Sqlite),
            Tx::Pg(t) => q.pg().fetch_optional(&mut **t).await?.map(DbRow::Pg),
        })
    }

    pub async fn one(&mut self, q: Q) -> Result<DbRow, StoreError> {
        Ok(match self {
            Tx::Sqlite(t) => DbRow::Sqlite(q.sqlite().fetch_one(&mut **t).await?),
            Tx::Pg(t) => DbRow::Pg(q.pg().fetch_one(&mut **t).await?),
        })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Store {
    /// Starts a write transaction. SQLite's starts with `BEGIN IMMEDIATE` so that two writers
    /// never both read and then fail to upgrade their lock half-way through a charge.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => {
                crate::engine::checkpoint_in_background(p);
                Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)
            }
            Store::Postgres(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Starts a read-only unit of work (a plain transaction: a consistent snapshot on both).
    pub(crate) async fn read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            // READ COMMITTED would give each statement its own snapshot; a verification that
            // pages through the ledger must see one.
            Store::Postgres(p) => Tx::Pg(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }
}

/// The float methods of the packed-read deserializers: money code never decodes binary floating
/// point (tests/no_floats.rs), and no packed read selects it.
macro_rules! refuse_floats {
    () => {
        fn deserialize_f32<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
            Err(de_error("a packed read never decodes floating point"))
        }

        fn deserialize_f64<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
            Err(de_error("a packed read never decodes floating point"))
        }
    };
}

/// One PostgreSQL row as a serde sequence of its columns, for [`Tx::packed`]: integers, text
/// and NULL (`Option`), the types packed reads select.
struct PgRowDe<'r>(&'r PgRow);

/// One column of a [`PgRowDe`].
struct PgColDe<'r> {
    row: &'r PgRow,
    index: usize,
}

struct PgRowSeq<'r> {
    row: &'r PgRow,
    next: usize,
}

type DeError = serde::de::value::Error;

fn de_error(e: impl std::fmt::Display) -> DeError {
    <DeError as serde::de::Error>::custom(e)
}

impl<'de> serde::Deserializer<'de> for PgRowDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_seq(PgRowSeq {
            row: self.0,
            next: 0,
        })
    }

    refuse_floats!();

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de> serde::de::SeqAccess<'de> for PgRowSeq<'_> {
    type Error = DeError;

    fn next_element_seed<S: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        if self.next >= self.row.len() {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        seed.deserialize(PgColDe {
            row: self.row,
            index,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.len().saturating_sub(self.next))
    }
}

impl PgColDe<'_> {
    fn is_null(&self) -> Result<bool, DeError> {
        use sqlx::ValueRef as _;
        Ok(self
            .row
            .try_get_raw(self.index)
            .map_err(de_error)?
            .is_null())
    }
}

impl<'de> serde::Deserializer<'de> for PgColDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        use sqlx::{TypeInfo as _, ValueRef as _};
        let raw = self.row.try_get_raw(self.index).map_err(de_error)?;
        if raw.is_null() {
            return v.visit_none();
        }
        let info = raw.type_info();
        let (row, i) = (self.row, self.index);
        match info.name() {
            "INT8" => v.visit_i64(row.try_get::<i64, _>(i).map_err(de_error)?),
            "INT4" => v.visit_i32(row.try_get::<i32, _>(i).map_err(de_error)?),
            "INT2" => v.visit_i16(row.try_get::<i16, _>(i).map_err(de_error)?),
            "BOOL" => v.visit_bool(row.try_get::<bool, _>(i).map_err(de_error)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                v.visit_str(row.try_get::<&str, _>(i).map_err(de_error)?)
            }
            other => Err(de_error(format!(
                "column {i} is of type {other}, which a packed read does not decode"
            ))),
        }
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.is_null()? {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    refuse_floats!();

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared SQL text relies on SQLite binding `$2` to the second argument even when it
    /// appears first.
    #[tokio::test]
    async fn sqlite_binds_numbered_parameters_by_number() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut tx = store.read().await.unwrap();
        let row = tx.one(q("SELECT $2 - $1").i64(10).i64(3)).await.unwrap();
        assert_eq!(row.i64(0).unwrap(), -7);
    }

    /// SQLite's WAL is copied back into the database file by a background checkpoint that a
    /// later write starts, not only by the automatic one (10,000 pages, far above what this
    /// test writes): the main file grows while the WAL holds the data.
    #[tokio::test]
    async fn the_wal_is_copied_back_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let store = Store::connect(path.to_str().unwrap()).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.exec(q(
            "CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        ))
        .await
        .unwrap();
        // About 4 MB: 1,000 rows of 4,000 bytes.
        tx.exec(q(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                   INSERT INTO filler (id, body) SELECT i, printf('%.4000c', 'x') FROM n",
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let main_len = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = main_len();
        assert!(
            before < 1_000_000,
            "the data is still in the WAL: {before} bytes"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while main_len() < 4_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no background checkpoint: the file holds {} bytes",
                main_len()
            );
            tokio::time::sleep(crate::engine::CHECKPOINT_EVERY).await;
            // Each write may start one (at most one every CHECKPOINT_EVERY, process-wide).
            store.begin().await.unwrap().commit().await.unwrap();
        }
    }

    /// A packed read decodes the same rows on both engines: integers, text with separators
    /// and non-ASCII, NULLs as `None`; on PostgreSQL a column of a type it does not decode is
    /// an error naming the type, not a wrong value.
    #[tokio::test]
    async fn packed_reads_decode_the_same_rows_on_both_engines() {
        type Row = (i64, Option<String>, String, Option<i64>);
        let want: Vec<Row> = vec![
            (1, None, "a\tb\\c".into(), Some(5)),
            (2, Some("x".into()), "电话 é".into(), None),
        ];
        let mut stores = vec![Store::connect("sqlite::memory:").await.unwrap()];
        if let Ok(url) = std::env::var("TOLL_TEST_DATABASE_URL") {
            let schema = format!("toll_packed_{}", std::process::id());
            stores.push(Store::connect_postgres_schema(&url, &schema).await.unwrap());
        }
        for store in stores {
            let mut tx = store.read().await.unwrap();
            let rest = "FROM (SELECT 1 AS a, CAST(NULL AS TEXT) AS b, 'a' || char(9) || 'b\\c' AS c, \
                        5 AS d UNION ALL SELECT 2, 'x', '电话 é', NULL) v";
            let rest = match tx {
                Tx::Sqlite(_) => rest.to_string(),
                Tx::Pg(_) => rest
                    .replace("char(9)", "chr(9)")
                    .replace("1 AS a", "CAST(1 AS BIGINT) AS a")
                    .replace("5 AS d", "CAST(5 AS BIGINT) AS d"),
            };
            let mut got: Vec<Row> = tx
                .packed(&["a", "b", "c", "d"], &rest, q_composed(String::new()))
                .await
                .unwrap();
            got.sort();
            assert_eq!(got, want);
            if let Tx::Pg(_) = tx {
                let err = tx
                    .packed::<(String,)>(
                        &["CURRENT_DATE"],
                        "FROM (SELECT 1) v",
                        q_composed(String::new()),
                    )
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("DATE"), "{err}");
            }
            drop(tx);
            if let Store::Postgres(pool) = &store {
                let schema = format!("toll_packed_{}", std::process::id());
                let sql = format!("DROP SCHEMA {schema} CASCADE");
                sqlx::query(AssertSqlSafe(sql)).execute(pool).await.unwrap();
            }
        }
    }
}
