-- Top-up requests a customer makes from self-service (issue 5): the customer cannot credit
-- their own wallet (that is money received, an operator's posting); they ask, and an operator
-- sees the open requests and tops up. Kept as rows, not only as audit entries, because the
-- operators who act on them do not read the audit log.
CREATE TABLE top_up_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    account_id      BIGINT NOT NULL REFERENCES accounts(id),
    amount_micros   BIGINT NOT NULL CHECK (amount_micros > 0),
    note            TEXT NOT NULL,
    actor           TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX top_up_requests_tenant ON top_up_requests (tenant_id, id);
