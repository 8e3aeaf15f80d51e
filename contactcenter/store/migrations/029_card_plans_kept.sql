-- The card's large statement planned once per connection, not once per card. PL/pgSQL keeps a statement's
-- plan, but a statement with parameters is planned afresh for its values ("custom plans") until the plan cache
-- finds that a generic plan would do as well — and for `cc_card`'s one statement of ten subqueries it never
-- did: each card was planned anew, 1.4 ms of planning for ~0.3 ms of execution, on every offer and every
-- recording that reads the card, most of PostgreSQL's CPU per contact (pg_stat_statements at 300 SMS/s:
-- 2,909 plans for 2,888 calls; docs/performance.md, "The card's plans").
-- Its reads look the client up by key and the members' rows up by their client's index whatever the values,
-- so one generic plan serves every call. But a generic plan is costed without the values, and on the small
-- tables of a young center it read every identity of the center rather than the card's (1.9 ms a card at 2,300
-- identities): every table it reads has the index its reads need, so it reads by index only. (A generic plan is
-- made again when its tables' statistics change: autovacuum's analyse invalidates it.)
ALTER FUNCTION cc_card(uuid, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION cc_card(uuid, integer) SET enable_seqscan = off;
-- The timeline's page stays planned for its values (0.5 ms): its generic plan, not knowing the page's size nor
-- the client's, sorted the client's whole history where the values choose the index's order and stop at the
-- page (a client of 10,000 entries read them all: tests/contract/test_card_cost.py). Called from `cc_card`, it
-- would inherit the setting above.
ALTER FUNCTION cc_timeline_page(uuid[], integer, timestamptz, uuid, text) SET plan_cache_mode = auto;
