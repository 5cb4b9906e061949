-- A counter that moves whenever something a charger may have cached changes outside the
-- ledger: every charge batch (it draws allowances and moves overage counters), and every
-- write that adds or replaces subscriptions, buckets or lines. A charger keeps the lines,
-- buckets, counters and wallets it read across batches, and reuses them only while the epoch
-- (and the chain's sequence, for ledger-only changes such as top-ups) is the one its own last
-- batch left; otherwise it reads again. It lives in the chain head's row because every
-- writer already locks that row, which orders the bump against a charge in progress.
ALTER TABLE ledger_heads ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
