-- The exclusive end of the last period a subscription was granted (its buckets created and its
-- fee charged). `Store::renew` rolls subscriptions whose period has ended into the next one,
-- applying plan changes that wait for the period end; charging refuses events at or after it
-- until then, rather than pricing them without the new period's allowances. NULL on rows
-- written before this column: the period that contains the start date.
ALTER TABLE subscriptions ADD COLUMN period_end TEXT;
