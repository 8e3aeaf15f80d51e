-- Web chat (issue 18): each visitor's transcript, numbered. The visitor id is the identity (the signed token
-- carries it); `chat_visitors.last_seq` is the transcript's counter, taken under the row's lock, so a visitor's
-- message and an agent's reply written at once by two API processes get distinct, gap-free numbers. A message is
-- kept once per (visitor, sender, message id): a visitor's retry after a dropped socket, or an agent's reply
-- recorded twice, keeps its first number.
CREATE TABLE chat_visitors (
    visitor_id uuid        PRIMARY KEY,
    last_seq   bigint      NOT NULL DEFAULT 0,
    -- What the visitor said about itself (`identify`): a claim shown to the agent, never merged.
    claims     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Proving the claimed email: the code sent to it (its SHA-256, never the code), until when it holds, the
    -- tries left, when it was sent (one a minute), and the address it proved.
    email_code_hash   bytea,
    email_code_until  timestamptz,
    email_code_tries  integer     NOT NULL DEFAULT 0,
    email_code_sent   timestamptz,
    verified_email    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);

CREATE TABLE chat_messages (
    visitor_id uuid        NOT NULL REFERENCES chat_visitors (visitor_id) ON DELETE CASCADE,
    seq        bigint      NOT NULL,
    sender     text        NOT NULL CHECK (sender IN ('visitor', 'agent')),
    message_id text        NOT NULL,
    body       text        NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (visitor_id, seq),
    UNIQUE (visitor_id, sender, message_id)
);

-- Appends a message to the visitor's transcript and returns its number; `o_new` is false when it was there
-- already (a retry). The events of a chat's life are written in the same transaction (schema/events.py).
CREATE FUNCTION cc_chat_append(p_visitor uuid, p_sender text, p_message_id text, p_body text,
                               OUT o_seq bigint, OUT o_new boolean, OUT o_sent_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    started boolean;
BEGIN
    INSERT INTO chat_visitors (visitor_id) VALUES (p_visitor) ON CONFLICT (visitor_id) DO NOTHING;
    -- The visitor's row lock orders everything written to its transcript, retries of one message included.
    SELECT last_seq = 0 OR ended_at IS NOT NULL INTO started FROM chat_visitors
     WHERE visitor_id = p_visitor FOR UPDATE;
    SELECT seq, sent_at INTO o_seq, o_sent_at FROM chat_messages
     WHERE visitor_id = p_visitor AND sender = p_sender AND message_id = p_message_id;
    IF FOUND THEN
        o_new := false;
        RETURN;
    END IF;
    UPDATE chat_visitors SET last_seq = last_seq + 1, ended_at = NULL
     WHERE visitor_id = p_visitor RETURNING last_seq INTO o_seq;
    INSERT INTO chat_messages (visitor_id, seq, sender, message_id, body)
    VALUES (p_visitor, o_seq, p_sender, p_message_id, p_body)
    RETURNING sent_at INTO o_sent_at;
    o_new := true;
    IF started THEN
        INSERT INTO events (type, subject, partition_key, data)
        VALUES ('chat.started', p_visitor, 'chat:' || p_visitor,
                jsonb_build_object('visitor_id', p_visitor));
    END IF;
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('chat.message', p_visitor, 'chat:' || p_visitor,
            jsonb_build_object('visitor_id', p_visitor, 'seq', o_seq, 'sender', p_sender));
END
$$;

-- The visitor ended the chat: true when it was going on (its `chat.ended` event written with the change).
CREATE FUNCTION cc_chat_end(p_visitor uuid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_visitors SET ended_at = now()
     WHERE visitor_id = p_visitor AND ended_at IS NULL AND last_seq > 0;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO events (type, subject, partition_key, data)
    VALUES ('chat.ended', p_visitor, 'chat:' || p_visitor, jsonb_build_object('visitor_id', p_visitor));
    RETURN true;
END
$$;
