-- An invoice's lines and tax summary move into its own row, as two JSON arrays (see
-- crates/store/src/billing/stored_lines.rs for the layout): a finalized invoice is an immutable
-- document read whole, and as rows of their own its lines cost a bill run of a million
-- accounts an index insert each, more than half of writing the invoice.
--
-- lines: [[kind, label, detail, quantity, unit, events, tax_name, tax_ppm, exact, amount], ...]
-- taxes: [[name, ppm, base, tax], ...]

ALTER TABLE invoices ADD COLUMN lines TEXT NOT NULL DEFAULT '[]';
ALTER TABLE invoices ADD COLUMN taxes TEXT NOT NULL DEFAULT '[]';

UPDATE invoices SET
    lines = COALESCE((
        SELECT json_group_array(json_array(l.kind, l.label, l.detail, l.quantity, l.unit,
                   l.events, l.tax_name, l.tax_ppm, l.exact, l.amount) ORDER BY l.line_no)
        FROM invoice_lines l WHERE l.tenant_id = invoices.tenant_id AND l.invoice_id = invoices.id
    ), '[]'),
    taxes = COALESCE((
        SELECT json_group_array(json_array(x.name, x.ppm, x.base, x.tax) ORDER BY x.idx)
        FROM invoice_taxes x WHERE x.tenant_id = invoices.tenant_id AND x.invoice_id = invoices.id
    ), '[]');

DROP TABLE invoice_lines;
DROP TABLE invoice_taxes;
