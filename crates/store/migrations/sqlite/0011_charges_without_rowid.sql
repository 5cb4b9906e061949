-- `charges` becomes a WITHOUT ROWID table clustered on its primary key (tenant, event key).
--
-- Every lookup of a charge goes by that key (is this event charged already?), and every charged
-- event inserts one row. As a rowid table each insert wrote two B-trees, the table and the
-- primary-key index beside it; now it writes one, and the key check reads the row itself. On
-- the charging bench (docs/BENCHMARKS.md) this took 1,000,000 events from 158,000 to 177,000
-- events/s. Nothing refers to a charge's rowid.
--
-- PostgreSQL has no such distinction (its tables are heaps with separate indexes), so this
-- migration is SQLite's only.

CREATE TABLE charges_new (
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    event_key       TEXT NOT NULL,
    subscriber_id   INTEGER NOT NULL,
    subscription_id INTEGER,
    usage           TEXT NOT NULL,
    service         TEXT,
    at_ms           INTEGER NOT NULL,
    quantity        INTEGER NOT NULL,
    covered         INTEGER NOT NULL,
    amount          INTEGER NOT NULL,
    first_seq       INTEGER,
    PRIMARY KEY (tenant_id, event_key)
) WITHOUT ROWID;
INSERT INTO charges_new (tenant_id, event_key, subscriber_id, subscription_id, usage, service,
                         at_ms, quantity, covered, amount, first_seq)
SELECT tenant_id, event_key, subscriber_id, subscription_id, usage, service, at_ms, quantity,
       covered, amount, first_seq
FROM charges;
DROP TABLE charges;
ALTER TABLE charges_new RENAME TO charges;
