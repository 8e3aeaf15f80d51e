-- Email (channels/email): what a message holds beyond its interaction — subject, text and sanitised HTML,
-- the ids it threads by, attachments — and, for a message that could not be parsed, its raw bytes, so that
-- nothing acknowledged with 250 is lost. Keyed by the Message-ID, the interaction's provider id: an SMTP
-- retry of the same message is stored once.
CREATE TABLE email_messages (
    message_id   text PRIMARY KEY,
    direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    -- The customer's address in the conversation: the sender of an inbound mail, the recipient of our reply.
    -- A mail naming this message in In-Reply-To/References (or a bounce of it) is filed under it.
    client_address text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    text_body    text NOT NULL DEFAULT '',
    html_body    text NOT NULL DEFAULT '',
    in_reply_to  text NOT NULL DEFAULT '',
    refs         text[] NOT NULL DEFAULT '{}',
    parsed       boolean NOT NULL DEFAULT true,
    raw          bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- How far the IMAP poller has taken each mailbox: a message is taken in (stored and on the bus) before its
-- UID is written here, so a restart takes up the rest and never skips one; a new UIDVALIDITY starts again
-- from the first message (the Message-ID keeps what was taken once from being taken twice).
CREATE TABLE email_imap_cursors (
    mailbox      text PRIMARY KEY,
    uidvalidity  bigint NOT NULL,
    last_uid     bigint NOT NULL
);

CREATE TABLE email_attachments (
    id            uuid PRIMARY KEY,
    message_id    text NOT NULL REFERENCES email_messages (message_id) ON DELETE CASCADE,
    position      integer NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    -- NULL when the attachment was past CC_MAIL_MAX_ATTACHMENT_BYTES: listed, not kept.
    content       bytea,
    UNIQUE (message_id, position)
);
