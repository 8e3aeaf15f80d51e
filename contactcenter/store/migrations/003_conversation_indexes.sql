-- A conversation's interactions (where a reply goes, what opened it) and the open conversations (what a
-- live-state rebuild reads) are looked up by conversation and by state: give both an index.
CREATE INDEX interactions_by_conversation ON interactions (conversation_id, received_at);
CREATE INDEX conversations_open ON conversations (opened_at) WHERE state = 'open';
