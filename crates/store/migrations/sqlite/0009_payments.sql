-- Payments (issue 6): money received from customers (bank transfer, cash, card or a payment
-- provider), what of it settled which invoice, and the provider webhook events already handled.
--
-- Every payment credits the account's wallet in the ledger (clearing -> wallet) in the same
-- transaction that records it; the rows here are the sub-ledger that says which invoices that
-- money paid. Money not yet allocated (`allocated < amount`) is the customer's credit: it is
-- still in the wallet and settles the next invoices.

CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    -- bank_transfer, cash, card, or provider (then `provider` names it: stripe, ...).
    method       TEXT NOT NULL CHECK (method IN ('bank_transfer', 'cash', 'card', 'provider')),
    provider     TEXT,
    -- The bank's reference, a receipt number, the provider's payment id ('' for cash without one).
    reference    TEXT NOT NULL,
    -- The caller's idempotency key: the same key is one payment, however often it is sent.
    idem_key     TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    -- The sum of this payment's rows in payment_allocations, kept in step with them so that
    -- the database itself refuses allocating more than was paid.
    allocated    INTEGER NOT NULL DEFAULT 0 CHECK (allocated >= 0 AND allocated <= amount),
    -- The sequence number of the ledger posting that credited the wallet.
    ledger_seq   INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    CHECK ((method = 'provider') = (provider IS NOT NULL)),
    UNIQUE (tenant_id, idem_key)
);
CREATE INDEX payments_account ON payments (tenant_id, account_id, id);
-- Payments with money left to allocate: what settles an account's next invoices.
CREATE INDEX payments_open ON payments (tenant_id, account_id, id) WHERE allocated < amount;

-- Which invoice a payment's money settled. A payment meets an invoice at most once: each time
-- one of the two is used up, so a second row for the same pair would be a bug.
CREATE TABLE payment_allocations (
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id),
    payment_id    INTEGER NOT NULL REFERENCES payments(id),
    invoice_id    INTEGER NOT NULL REFERENCES invoices(id),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    allocated_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, payment_id, invoice_id)
);
CREATE INDEX payment_allocations_invoice ON payment_allocations (tenant_id, invoice_id);

-- Webhook events of payment providers already recorded: providers deliver at least once (and
-- retry for days), so an event id seen before records nothing again.
CREATE TABLE provider_events (
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    payment_id   INTEGER NOT NULL REFERENCES payments(id),
    received_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, provider, event_id)
);

-- An invoice is never paid more than its total (credit notes, with a negative total, are never
-- paid). SQLite cannot add a CHECK to an existing table, so triggers enforce what PostgreSQL's
-- constraint does.
CREATE TRIGGER invoices_paid_within_total_insert BEFORE INSERT ON invoices
WHEN NEW.paid < 0 OR (NEW.paid <> 0 AND NEW.paid > NEW.total)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: invoices_paid_within_total');
END;
CREATE TRIGGER invoices_paid_within_total_update BEFORE UPDATE OF paid, total ON invoices
WHEN NEW.paid < 0 OR (NEW.paid <> 0 AND NEW.paid > NEW.total)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: invoices_paid_within_total');
END;
