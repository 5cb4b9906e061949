-- Ingestion (issue 4): rated call detail records, the suspense queue and file imports.

-- One row per charged CDR, written in the same transaction as its `charges` row and ledger
-- entry, so a rated record, its idempotency key and its money exist together or not at all.
-- `charges` stays the idempotency record (its key is `source/record_id`); this table keeps
-- what rating decided and what the record said, for queries, disputes and re-rating.
-- Amounts are integer micro-units of the tenant's currency, like the ledger.
CREATE TABLE cdrs (
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    event_key       TEXT NOT NULL,
    source          TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    import_id       INTEGER,
    subscriber_id   INTEGER NOT NULL,
    account_id      INTEGER NOT NULL,
    caller          TEXT NOT NULL,
    -- As dialled: the form a dispute is argued about; `destination` is what rating matched.
    callee          TEXT NOT NULL,
    destination     TEXT,
    start_ms        INTEGER NOT NULL,
    -- The source clock's UTC offset at the start (time bands are read on that clock).
    utc_offset_s    INTEGER NOT NULL,
    answer_ms       INTEGER,
    end_ms          INTEGER,
    usage           TEXT NOT NULL,
    -- Rating units: nanoseconds for voice, messages, bytes, custom units.
    quantity        INTEGER NOT NULL,
    category        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    rated_usage     INTEGER,
    -- The tariff's price of the whole record (NULL: not rated by a tariff, e.g. custom usage).
    cost            INTEGER,
    matched_prefix  TEXT,
    destination_id  TEXT,
    carrier         TEXT,
    region          TEXT,
    -- 1 when no tariff rule matched and the configured default rate priced it.
    default_rated   INTEGER NOT NULL DEFAULT 0,
    -- What the wallet paid after allowances (may differ from `cost`).
    amount          INTEGER NOT NULL,
    covered         INTEGER NOT NULL,
    ledger_seq      INTEGER,
    call_id         TEXT,
    rated_ms        INTEGER NOT NULL,
    -- What priced it: allowance, overage, tariff (the record's rated cost, whole) or
    -- plan_tariff (the plan's profile priced what the allowances left). Re-rating re-prices
    -- only `tariff` rows: the others' price does not come from the record's own rating.
    priced_by       TEXT NOT NULL,
    -- How many times re-rating changed its price (the adjustment's key counts with it).
    rerated         INTEGER NOT NULL DEFAULT 0
);
-- No key on (tenant, event_key): `charges`, written in the same transaction, already keeps event
-- keys unique, and a second b-tree of 60-byte keys was a third of the cost of storing a CDR.
-- Look-ups by key (re-rating) go through the start time, which every caller knows.
CREATE INDEX cdrs_account_time ON cdrs (tenant_id, account_id, start_ms);
CREATE INDEX cdrs_prefix_time ON cdrs (tenant_id, matched_prefix, start_ms);
CREATE INDEX cdrs_time ON cdrs (tenant_id, start_ms);

-- Records that could not be charged, with why and the record itself, until fixed and
-- re-processed (status 'resolved') or given up (status 'discarded'). Nothing is dropped
-- silently. `item_key` is the record's event key when it parsed, else a key derived from the
-- source and the raw bytes, so the same bad record twice is one item (its `attempts` grow).
CREATE TABLE suspense (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    item_key        TEXT NOT NULL,
    source          TEXT NOT NULL,
    -- The reader that produced it (asterisk, freeswitch-json, ...): how `raw` is read again.
    format          TEXT NOT NULL,
    import_id       INTEGER,
    line            INTEGER,
    -- parse | rate | charge
    stage           TEXT NOT NULL,
    -- Stable class for filters and metrics (parse_error, unknown_subscriber, no_rate, ...).
    class           TEXT NOT NULL,
    field           TEXT,
    reason          TEXT NOT NULL,
    raw             BLOB NOT NULL,
    -- The normalised record as JSON (editable); NULL when the raw record never parsed.
    record          TEXT,
    status          TEXT NOT NULL DEFAULT 'open',
    attempts        INTEGER NOT NULL DEFAULT 1,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    resolved_ms     INTEGER,
    UNIQUE (tenant_id, item_key)
);
CREATE INDEX suspense_status ON suspense (tenant_id, status, class);

-- One row per file import: its content hash makes a second import of the same bytes a no-op
-- unless forced; the counters are the run's reconciliation (records = charged + duplicate +
-- skipped + suspended). `finished_ms` NULL: the run did not finish (a crash), so importing the
-- file again is allowed and only charges what is missing.
CREATE TABLE imports (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    content_hash    BLOB NOT NULL,
    file_name       TEXT NOT NULL,
    format          TEXT NOT NULL,
    source          TEXT NOT NULL,
    started_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,
    records         INTEGER NOT NULL DEFAULT 0,
    charged         INTEGER NOT NULL DEFAULT 0,
    duplicate       INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    suspended       INTEGER NOT NULL DEFAULT 0,
    amount          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX imports_hash ON imports (tenant_id, content_hash);
