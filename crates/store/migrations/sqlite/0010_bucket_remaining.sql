-- What is left of each allowance bucket moves out of `buckets` into a narrow table of its own.
--
-- Charging rewrites the remaining quantity of every bucket a batch drew on, and the buckets a
-- batch touches are spread at random over the whole table (events arrive in no line order). In
-- SQLite a rewritten row dirties its whole page, so a 50,000-event batch dirtied nearly every
-- page of `buckets` (about 60 bytes a row) and wrote all of them to the WAL at commit: a third
-- of the batch. Here a row is about 12 bytes, so the same batch dirties far fewer pages: on the
-- charging bench (docs/BENCHMARKS.md) the bucket writes and the commit of a warm batch fell
-- from about 145 ms to 75 ms.
-- The bucket's definition (usage, services, validity, initial quantity) never changes after the
-- grant and stays in `buckets`.
--
-- SQLite cannot drop a column named in a CHECK constraint, so `buckets` is rebuilt without it
-- (nothing references `buckets`, so the rename is safe with foreign keys on). The old check
-- `remaining <= initial` is the charger's invariant now (it only ever lowers a bucket).

ALTER TABLE buckets RENAME TO buckets_old;
DROP INDEX buckets_subscription;

CREATE TABLE buckets (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id),
    usage           TEXT NOT NULL,
    services        TEXT,
    source          TEXT NOT NULL,
    starts_ms       INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    initial         INTEGER NOT NULL CHECK (initial >= 0)
);
INSERT INTO buckets (id, tenant_id, subscription_id, usage, services, source, starts_ms,
                     expires_ms, initial)
SELECT id, tenant_id, subscription_id, usage, services, source, starts_ms, expires_ms, initial
FROM buckets_old;
CREATE INDEX buckets_subscription ON buckets (tenant_id, subscription_id, expires_ms);

-- One row per bucket, written in the same transaction as the bucket. `tenant_id` is repeated
-- here so that every write stays scoped by tenant without a join.
CREATE TABLE bucket_remaining (
    bucket_id INTEGER PRIMARY KEY REFERENCES buckets(id),
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    remaining INTEGER NOT NULL CHECK (remaining >= 0)
);
INSERT INTO bucket_remaining (bucket_id, tenant_id, remaining)
SELECT id, tenant_id, remaining FROM buckets_old;

DROP TABLE buckets_old;
