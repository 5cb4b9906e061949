-- Real-time call events (issue 4): calls a switch announced at their start (`POST …/calls/start`)
-- and has not ended yet.
--
-- Why a table: a call whose end never comes (a lost event, a crashed switch) must still be
-- charged — seed 001: at the maximum duration, after a timeout — so every start is kept until
-- its end, and the server's sweeper closes and charges what stays open longer than the maximum.
-- The start is also where a bare end event's caller, callee and start time come from.
--
-- Key (tenant, source, call_id): a repeated start is a no-op (INSERT … ON CONFLICT DO NOTHING).
-- Closed calls are kept, status 'ended' or 'swept', so that a repeated or late end still finds
-- its call; what keeps it from being charged twice is `charges` (the event key
-- source/call_id), whichever of the end and the sweeper came first.
CREATE TABLE open_calls (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    source          TEXT NOT NULL,
    call_id         TEXT NOT NULL,
    caller          TEXT NOT NULL,
    callee          TEXT NOT NULL,
    start_ms        BIGINT NOT NULL,
    -- The switch clock's UTC offset at the start (time bands are read on that clock).
    utc_offset_s    BIGINT NOT NULL,
    category        TEXT,
    -- open | ended | swept
    status          TEXT NOT NULL DEFAULT 'open',
    created_ms      BIGINT NOT NULL,
    closed_ms       BIGINT,
    PRIMARY KEY (tenant_id, source, call_id)
);
-- The sweeper's scan (oldest open calls first) and the open-calls gauge: only open rows.
CREATE INDEX open_calls_open ON open_calls (tenant_id, start_ms) WHERE status = 'open';

-- A CDR the sweeper made for a call that never ended, charged at the maximum duration, says
-- so: a dispute about it starts from there.
ALTER TABLE cdrs ADD COLUMN swept BIGINT NOT NULL DEFAULT 0;
