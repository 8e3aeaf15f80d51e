-- An erasure empties the personal data in the events kept (cc_erase_client, migrations 038 and 042): until now by
-- reading the whole log, about a second per two million events (`CC_EVENT_RETENTION_DAYS` of a busy contact
-- center is tens of millions).
-- These indexes hold only the events an erasure looks for, by what it looks for them with: a card's
-- `identity.added` and `client.merged` (one of each per new identity or merge, not per contact), and the rare
-- events naming an identifier's digest.
--
-- Upgrading a large event log: each build reads the whole table and holds its writes meanwhile (every change
-- writes events). Build them first, while the service runs, and this migration finds them:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_of_card ON events (((data ->> 'client_id')::uuid))
--       WHERE type IN ('identity.added', 'client.merged');
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_merge_survivor ON events (((data ->> 'survivor_id')::uuid))
--       WHERE type = 'client.merged';
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_merge_merged ON events (((data ->> 'merged_id')::uuid))
--       WHERE type = 'client.merged';
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_of_identifier ON events ((data ->> 'digest'))
--       WHERE type IN ('identifier.quarantined', 'identifier.released');
CREATE INDEX IF NOT EXISTS events_of_card ON events (((data ->> 'client_id')::uuid))
    WHERE type IN ('identity.added', 'client.merged');
CREATE INDEX IF NOT EXISTS events_merge_survivor ON events (((data ->> 'survivor_id')::uuid))
    WHERE type = 'client.merged';
CREATE INDEX IF NOT EXISTS events_merge_merged ON events (((data ->> 'merged_id')::uuid))
    WHERE type = 'client.merged';
CREATE INDEX IF NOT EXISTS events_of_identifier ON events ((data ->> 'digest'))
    WHERE type IN ('identifier.quarantined', 'identifier.released');
