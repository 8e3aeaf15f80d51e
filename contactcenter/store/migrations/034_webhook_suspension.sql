-- A webhook's line is bounded (CC_WEBHOOK_MAX_PENDING, contactcenter/webhooks/dispatcher.py): a receiver dead
-- long enough to pass it suspends its webhook — the line parked for an admin's replay, and the events after
-- `missed_after` (the newest recorded for it) not recorded while it stays suspended (the event log keeps them,
-- `GET /api/v1/events?after=`). The replay clears both (contactcenter/webhooks/registry.py).
ALTER TABLE webhooks
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN missed_after bigint;
