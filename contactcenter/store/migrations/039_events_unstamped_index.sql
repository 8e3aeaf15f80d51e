-- The relay's stamp finds the committed events without an id by an index of those alone (issue 15's cost).
-- It found them at the NULL end of `id`'s unique index, where each stamped row leaves the entry of its old,
-- unstamped version until vacuum: under thousands of events a second each stamp walked the dead entries of all
-- the rows stamped before it — 31.6 buffers read per row stamped (docs/performance.md, eleventh session).
-- `events_unstamped` holds the unstamped rows only (a stamped row's new version has no entry), and the unique
-- index on `id` becomes partial so that it can no longer serve `id IS NULL` at all: beside it, the planner kept
-- choosing the unique index's NULL end on a small table. `?after=` paging (`id > $1`) implies `id IS NOT NULL`
-- and keeps its index.
--
-- Upgrading a large event log: these builds lock the table's writes (every change writes events) for as long as
-- they take. Build both first, while the service runs, and this migration finds them:
--   CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_by_id ON events (id) WHERE id IS NOT NULL;
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_unstamped ON events (seq) WHERE id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (id) WHERE id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_unstamped ON events (seq) WHERE id IS NULL;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_id_key;
