-- The server's people and machines (issue 5): users with roles, their login sessions, API keys,
-- the audit log of every administrative action, stored tariff versions, and the replies kept
-- for `Idempotency-Key`.
--
-- Why users belong to one tenant: tenant isolation is then a property of the principal, not of
-- each route — every query a request makes takes the principal's tenant, so another tenant's
-- objects are simply not found (404), never hinted at.
CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    -- Unique across tenants: a login form has no tenant field.
    login           TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    -- PHC string of an argon2id hash; never the password.
    password_hash   TEXT NOT NULL,
    -- admin | operator | approver | auditor | provider | customer
    role            TEXT NOT NULL,
    -- A customer user sees this account only.
    account_code    TEXT,
    -- Lockout: failed attempts in a row, and until when logins are refused.
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    disabled        BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, login);

-- A login session. Only the SHA-256 of the cookie's token is kept: a copy of the database does
-- not let anyone sign in.
CREATE TABLE sessions (
    token_hash      BYTEA PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users(id),
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- API keys for machines: `toll_<prefix>_<secret>`; the prefix finds the row, the secret's
-- SHA-256 proves it. Shown once at creation, scoped, expiring, revocable.
CREATE TABLE api_keys (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    prefix          TEXT NOT NULL UNIQUE,
    secret_hash     BYTEA NOT NULL,
    name            TEXT NOT NULL,
    -- The role the key acts with (never above its creator's).
    role            TEXT NOT NULL,
    -- Space-separated scopes, e.g. "read rate".
    scopes          TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT,
    revoked_ms      BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

-- Who did what, when, to what, with the object before and after (JSON). Append-only.
CREATE TABLE audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_key      TEXT NOT NULL,
    before_json     TEXT,
    after_json      TEXT,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- Uploaded tariffs: every upload is a new version of the tariff's code, kept whole (its source
-- files) so what priced a call can always be shown and compiled again. One version per tenant
-- is active: the server rates with it.
CREATE TABLE tariffs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    code            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    -- toll | cgrates
    format          TEXT NOT NULL,
    -- Counts of the compiled tariff (JSON), for lists.
    summary         TEXT NOT NULL,
    uploaded_by     TEXT NOT NULL,
    uploaded_ms     BIGINT NOT NULL,
    active          BIGINT NOT NULL DEFAULT 0,
    activated_by    TEXT,
    activated_ms    BIGINT,
    UNIQUE (tenant_id, code, version)
);
CREATE UNIQUE INDEX tariffs_one_active ON tariffs (tenant_id) WHERE active = 1;

CREATE TABLE tariff_files (
    tariff_id       BIGINT NOT NULL REFERENCES tariffs(id),
    name            TEXT NOT NULL,
    content         BYTEA NOT NULL,
    PRIMARY KEY (tariff_id, name)
);

-- `Idempotency-Key` on POST: the first reply is kept and replayed for the same key and the same
-- request; the same key with another request is refused (422).
CREATE TABLE idempotency_keys (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    principal       TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    status          BIGINT NOT NULL,
    body            BYTEA NOT NULL,
    created_ms      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, principal, idem_key)
);
