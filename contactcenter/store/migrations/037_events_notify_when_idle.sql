-- The outbox's NOTIFY only while the publishing relay is idle (issue 15's cost at the ceiling). A transaction
-- that notified takes, at its commit, a lock every other notifying transaction of the cluster waits for, held
-- until its commit is on disk: with a notification per change, the changes' commits were flushed one after the
-- other instead of together. A busy relay comes back every linger untold (contactcenter/events/relay.py), so
-- the changes notify only when it said it listens: it sets `notify` before it listens, and clears it when it is
-- busy again. A change that read the switch just before it turned on commits untold: the relay looks once more
-- shortly after it began to listen, then at each sweep — nothing waits longer than that.
ALTER TABLE events_relay ADD COLUMN notify boolean NOT NULL DEFAULT true;

CREATE OR REPLACE FUNCTION cc_events_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce((SELECT notify FROM events_relay), true) THEN
        PERFORM pg_notify('cc_events', current_schema());
    END IF;
    RETURN NULL;
END
$$;
