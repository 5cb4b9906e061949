-- Billing (issue 6): tax rules, daily sums of what each account was charged, invoices with
-- their lines and taxes, and the counters that number them without gaps.

-- Whether the tenant's prices include VAT (consumer prices in China do) and how invoices round.
ALTER TABLE tenants ADD COLUMN tax_mode TEXT NOT NULL DEFAULT 'inclusive';
ALTER TABLE tenants ADD COLUMN invoice_rounding TEXT NOT NULL DEFAULT '*middle';
-- calendar_month, or anniversary (monthly from the day the account was opened).
ALTER TABLE accounts ADD COLUMN bill_cycle TEXT NOT NULL DEFAULT 'calendar_month';

-- VAT per product: a usage kind (voice, sms, data, ...), `fee` for plan fees and proration,
-- `other` for postings, or `*` for the tenant's default. No rule: outside the scope of tax.
CREATE TABLE tax_rules (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    product     TEXT NOT NULL,
    name        TEXT NOT NULL,
    ppm         INTEGER NOT NULL CHECK (ppm >= 0 AND ppm <= 1000000),
    PRIMARY KEY (tenant_id, product)
);

-- What each account was charged per tenant-local day and invoice line (usage by destination,
-- allowance use, overage, fees, proration, postings): a month-end bill run only sums days.
-- A row with invoice_id NULL is open; once invoiced it is never changed again, and what
-- arrives for that day later (late or re-rated usage) goes into a new open row, which the
-- next invoice shows as late usage.
CREATE TABLE bill_days (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    day         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    product     TEXT NOT NULL,
    unit        TEXT,
    quantity    INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    invoice_id  INTEGER
);
CREATE UNIQUE INDEX bill_days_open ON bill_days (tenant_id, account_id, day, kind, label)
    WHERE invoice_id IS NULL;
CREATE INDEX bill_days_day ON bill_days (tenant_id, day);
CREATE INDEX bill_days_invoice ON bill_days (tenant_id, invoice_id);

-- The ledger sequence through which postings (fees, proration, operators' charges) have been
-- summed into bill_days: each pass reads only what was posted since, by the ledger's key.
CREATE TABLE bill_cursors (
    tenant_id   INTEGER PRIMARY KEY REFERENCES tenants(id),
    ledger_seq  INTEGER NOT NULL
);

-- Days whose usage has been summed, and when: a bill run sums the days no job has.
CREATE TABLE bill_usage_days (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    day         TEXT NOT NULL,
    summed_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- The last number taken per tenant, series and year: taken in the transaction that finalizes
-- the invoice, so numbers have no gaps.
CREATE TABLE invoice_counters (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    series      TEXT NOT NULL,
    year        INTEGER NOT NULL,
    last        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, series, year)
);

CREATE TABLE invoices (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id),
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    -- invoice or credit_note
    kind          TEXT NOT NULL,
    corrects_id   INTEGER REFERENCES invoices(id),
    -- The month the period starts in (2026-10) and its dates, end exclusive.
    period        TEXT NOT NULL,
    period_start  TEXT NOT NULL,
    period_end    TEXT NOT NULL,
    -- draft, finalized, paid or void
    status        TEXT NOT NULL,
    number        TEXT,
    currency      TEXT NOT NULL,
    tax_mode      TEXT NOT NULL,
    rounding      TEXT NOT NULL,
    subtotal      INTEGER NOT NULL,
    tax_total     INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    paid          INTEGER NOT NULL DEFAULT 0,
    note          TEXT NOT NULL DEFAULT '',
    created_ms    INTEGER NOT NULL,
    finalized_ms  INTEGER,
    UNIQUE (tenant_id, number)
);
-- One invoice per account and period, whatever crashes and restarts a bill run goes through.
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (tenant_id, account_id, period)
    WHERE kind = 'invoice' AND status <> 'void';
CREATE INDEX invoices_account ON invoices (tenant_id, account_id, id);

CREATE TABLE invoice_lines (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    invoice_id  INTEGER NOT NULL REFERENCES invoices(id),
    line_no     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    detail      TEXT,
    quantity    INTEGER,
    unit        TEXT,
    events      INTEGER,
    tax_name    TEXT,
    tax_ppm     INTEGER,
    exact       INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, line_no)
);

CREATE TABLE invoice_taxes (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    invoice_id  INTEGER NOT NULL REFERENCES invoices(id),
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    ppm         INTEGER NOT NULL,
    base        INTEGER NOT NULL,
    tax         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, idx)
);
CREATE INDEX accounts_wallet ON accounts (tenant_id, wallet_id);
