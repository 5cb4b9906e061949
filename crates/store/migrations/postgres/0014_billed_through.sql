-- Daily rows are billed by a per-account watermark instead of being marked one by one.
--
-- A bill run used to set `bill_days.invoice_id` on every daily row it billed: 25 row updates
-- per account and month, each moving two index entries, half of every batch and the part that
-- grew fastest with the table. Now an account's `billed_through` is the end (exclusive) of the
-- last period it was invoiced for, and a daily row of a day before it is billed — unless it
-- arrived after that invoice was made: such a row is written `late`, stays open until the
-- next invoice, which marks it with its `invoice_id` (late rows are few). So:
--
--   billed  =  invoice_id IS NOT NULL  OR  (late = 0 AND day < accounts.billed_through)
--
-- Rows marked before this migration keep their invoice_id; open rows of a day already billed
-- through become late rows.

ALTER TABLE accounts ADD COLUMN billed_through TEXT;
UPDATE accounts SET billed_through = (
    SELECT MAX(i.period_end) FROM invoices i
    WHERE i.tenant_id = accounts.tenant_id AND i.account_id = accounts.id
      AND i.kind = 'invoice' AND i.status <> 'void');

ALTER TABLE bill_days ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
UPDATE bill_days SET late = 1
WHERE invoice_id IS NULL
  AND day < (SELECT a.billed_through FROM accounts a WHERE a.id = bill_days.account_id);

-- One open row per day and line is no longer kept: rows are added, never merged, and a run
-- sums them. A run reads an account's rows from its watermark by this index.
DROP INDEX bill_days_open;
CREATE INDEX bill_days_account ON bill_days (tenant_id, account_id, late, day);
DROP INDEX bill_days_invoice;
CREATE INDEX bill_days_invoice ON bill_days (tenant_id, invoice_id) WHERE invoice_id IS NOT NULL;

-- Moved by every write that adds, removes or releases daily rows: a bill run reads a batch
-- ahead of the transaction that writes it, and reads it again there if this moved meanwhile.
ALTER TABLE bill_cursors ADD COLUMN days_version BIGINT NOT NULL DEFAULT 0;
