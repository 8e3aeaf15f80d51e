-- A webhook's line is bounded (CC_WEBHOOK_MAX_PENDING, contactcenter/webhooks/dispatcher.py): a receiver dead
-- long enough to pass it suspends its webhook — the line parked for an admin's replay, and the events after
-- `missed_after` (the newest recorded for it) not recorded while it stays suspended (the event log keeps them,
-- `GET /api/v1/events?after=`). The replay clears both (contactcenter/webhooks/registry.py) and stamps
-- `replayed_at`: a dispatcher that looked at the line before a replay does not suspend what it put back.
ALTER TABLE webhooks
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN missed_after bigint,
    ADD COLUMN replayed_at timestamptz;
