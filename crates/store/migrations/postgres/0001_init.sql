-- Toll's schema for PostgreSQL, for scale (several workers share it).
--
-- Conventions shared with the SQLite schema (migrations/sqlite), so that one set of
-- queries and one behaviour suite serve both engines:
-- * every row carries tenant_id and every query filters on it: tenants never see each other;
-- * money is BIGINT micro-units (10^-6 of the currency unit): the same representation as SQLite,
--   and integers make a balance a plain SUM;
-- * usage quantities are BIGINT base units (voice seconds, messages, bytes, custom units);
-- * instants are BIGINT epoch milliseconds, calendar days are TEXT 'YYYY-MM-DD';
-- * a plan definition is kept as the TOML text the operator wrote (versioned, never edited
--   once submitted), so what was approved is exactly what is charged.

CREATE TABLE tenants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    -- Periods, allowances and day-based proration follow the tenant's calendar.
    time_zone   TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- A plan is the stable identity (its code); each edit after submission is a new version.
CREATE TABLE plans (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    code        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    UNIQUE (tenant_id, code)
);

CREATE TABLE plan_versions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    plan_id     BIGINT NOT NULL REFERENCES plans(id),
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    definition  TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    UNIQUE (plan_id, version)
);
CREATE INDEX plan_versions_tenant ON plan_versions (tenant_id, plan_id);

-- Every lifecycle transition with who, when and why: the audit trail maker-checker needs.
CREATE TABLE plan_transitions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    plan_version_id BIGINT NOT NULL REFERENCES plan_versions(id),
    action          TEXT NOT NULL,
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    comment         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX plan_transitions_version ON plan_transitions (tenant_id, plan_version_id);

CREATE TABLE customers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    UNIQUE (tenant_id, code)
);

-- Ledger accounts: customer wallets and the tenant's own books (revenue, tax, clearing, ...).
-- debits/credits are running totals kept in the same transaction as the entries, so a
-- balance read is one row; `toll ledger verify` re-adds the entries to prove them.
CREATE TABLE ledger_accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    code          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    floor_kind    TEXT NOT NULL,
    floor_micros  BIGINT NOT NULL DEFAULT 0,
    debits        BIGINT NOT NULL DEFAULT 0,
    credits       BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, code)
);

-- A billing account of a customer: prepaid (wallet may not go below 0) or postpaid (down to
-- minus its credit limit). Its wallet is a ledger account.
CREATE TABLE accounts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         BIGINT NOT NULL REFERENCES tenants(id),
    customer_id       BIGINT NOT NULL REFERENCES customers(id),
    code              TEXT NOT NULL,
    mode              TEXT NOT NULL,
    currency          TEXT NOT NULL,
    wallet_id         BIGINT NOT NULL REFERENCES ledger_accounts(id),
    created_ms        BIGINT NOT NULL,
    UNIQUE (tenant_id, code)
);

-- A line: a phone number (or other usage identity) of an account.
CREATE TABLE subscribers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    number      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);

-- A subscription of an account to one plan version. Family plans have several lines
-- (subscription_lines); their buckets belong to the subscription, so the lines share them.
CREATE TABLE subscriptions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    account_id      BIGINT NOT NULL REFERENCES accounts(id),
    plan_version_id BIGINT NOT NULL REFERENCES plan_versions(id),
    status          TEXT NOT NULL,
    anchor_date     TEXT NOT NULL,
    start_date      TEXT NOT NULL,
    end_date        TEXT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions (tenant_id, account_id);

CREATE TABLE subscription_lines (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers(id),
    PRIMARY KEY (tenant_id, subscriber_id, subscription_id)
);

-- Plan changes with their history: written in the same transaction as the change itself.
CREATE TABLE subscription_changes (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         BIGINT NOT NULL REFERENCES tenants(id),
    subscription_id   BIGINT NOT NULL REFERENCES subscriptions(id),
    from_version_id   BIGINT REFERENCES plan_versions(id),
    to_version_id     BIGINT NOT NULL REFERENCES plan_versions(id),
    effective         TEXT NOT NULL,
    effective_date    TEXT NOT NULL,
    actor             TEXT NOT NULL,
    at_ms             BIGINT NOT NULL,
    credit_micros     BIGINT NOT NULL DEFAULT 0,
    charge_micros     BIGINT NOT NULL DEFAULT 0,
    comment           TEXT NOT NULL DEFAULT '',
    -- 0 while a change at period end waits for the period to end.
    applied           BIGINT NOT NULL
);
CREATE INDEX subscription_changes_sub ON subscription_changes (tenant_id, subscription_id);

-- Allowance buckets of one subscription and period. `services` is NULL for any usage of the
-- kind or a comma-separated list of service names (destination-bound packs).
CREATE TABLE buckets (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    usage           TEXT NOT NULL,
    services        TEXT,
    source          TEXT NOT NULL,
    starts_ms       BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    initial         BIGINT NOT NULL,
    remaining       BIGINT NOT NULL,
    CHECK (remaining >= 0 AND remaining <= initial)
);
CREATE INDEX buckets_subscription ON buckets (tenant_id, subscription_id, expires_ms);

-- Overage accrued per subscription, usage kind and period: the counter tiered overage is
-- priced against (in the rule's metered unit: whole pricing units, or base units when exact),
-- so each event is charged the difference it makes to the period's price.
CREATE TABLE overage_usage (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    usage           TEXT NOT NULL,
    period_start    TEXT NOT NULL,
    accrued         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id, usage, period_start)
);

-- The double-entry ledger: one row per leg (a debit of one account and a credit of another by
-- the same amount), append-only, hash-chained per tenant by seq.
CREATE TABLE ledger_entries (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    tx_key      TEXT NOT NULL,
    leg         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    debit_id    BIGINT NOT NULL,
    credit_id   BIGINT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    memo        TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, tx_key, leg)
);
CREATE INDEX ledger_entries_debit ON ledger_entries (tenant_id, debit_id);
CREATE INDEX ledger_entries_credit ON ledger_entries (tenant_id, credit_id);

-- The last link of each tenant's chain, so a deleted tail entry is detected too.
CREATE TABLE ledger_heads (
    tenant_id   BIGINT PRIMARY KEY REFERENCES tenants(id),
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL
);

-- One row per charged usage event: the idempotency record (the same event key twice is
-- charged once) and what the charge consumed.
CREATE TABLE charges (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    event_key       TEXT NOT NULL,
    subscriber_id   BIGINT NOT NULL,
    subscription_id BIGINT,
    usage           TEXT NOT NULL,
    service         TEXT,
    at_ms           BIGINT NOT NULL,
    quantity        BIGINT NOT NULL,
    covered         BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    first_seq       BIGINT,
    PRIMARY KEY (tenant_id, event_key)
);
