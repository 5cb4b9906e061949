-- What is left of each allowance bucket moves out of `buckets` into a narrow table of its own
-- (the SQLite migration of the same number says why: charging rewrites it for every bucket a
-- batch drew on, at random places in the table). Here the narrow row means a smaller new tuple
-- version per update; the bucket's definition never changes after the grant.
CREATE TABLE bucket_remaining (
    bucket_id BIGINT PRIMARY KEY REFERENCES buckets(id),
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    remaining BIGINT NOT NULL CHECK (remaining >= 0)
);
INSERT INTO bucket_remaining (bucket_id, tenant_id, remaining)
SELECT id, tenant_id, remaining FROM buckets;

-- Dropping the column drops the check that named it; `initial` keeps a check of its own.
ALTER TABLE buckets DROP COLUMN remaining;
ALTER TABLE buckets ADD CHECK (initial >= 0);
