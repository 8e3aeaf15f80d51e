-- Duplicate suggestions (issue 19): the blocks each card is in (contactcenter/matching.py `blocking_keys`).
-- A card is compared only with the cards that share a block, so a suggestion costs a few index reads per
-- change, whatever the number of clients.
CREATE TABLE client_match_keys (
    key       text NOT NULL,
    client_id uuid NOT NULL REFERENCES clients (id),
    PRIMARY KEY (key, client_id)
);
CREATE INDEX client_match_keys_by_client ON client_match_keys (client_id);
