-- The relay's cursor (issue 15's budget): what the relay has published is every stamped event up to one id, kept
-- in one row, instead of a `published_at` written on every event. Marking a round published was a second update
-- of each event row (a new row version and an entry in each of its indexes) after the stamp's; now a round costs
-- the events one write, the stamp, and this row one. The relay publishes in id order and moves the cursor over
-- the prefix the broker confirmed; what lies beyond it (a relay that died, a broker that refused) goes out again
-- after it, with the same ids. Retention deletes by id below the cursor.
CREATE TABLE events_relay (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    published_up_to bigint  NOT NULL
);
-- Up to the first stamped event not yet published, or all of them; what was published beyond such a gap goes
-- out again, with its id (consumers deduplicate by it).
INSERT INTO events_relay (published_up_to)
SELECT coalesce((SELECT min(id) - 1 FROM events WHERE published_at IS NULL AND id IS NOT NULL),
                (SELECT max(id) FROM events), 0);

DROP INDEX events_unpublished;
ALTER TABLE events DROP COLUMN published_at;
