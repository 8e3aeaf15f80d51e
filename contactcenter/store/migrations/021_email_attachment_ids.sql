-- Attachments' ids were a uuid5 of the message's Message-ID and the attachment's place in it: anyone who knew
-- the Message-ID could name them. They are random now (channels/email/mailbox.py); the ones stored before are
-- given random ids here, and the links in their mails' bodies follow.
DO $$
DECLARE
    r record;
    v_new uuid;
BEGIN
    FOR r IN SELECT id, message_id FROM email_attachments LOOP
        v_new := gen_random_uuid();
        UPDATE email_attachments SET id = v_new WHERE id = r.id;
        UPDATE interactions SET body = replace(body, r.id::text, v_new::text)
         WHERE channel = 'email' AND direction = 'inbound' AND provider_id = r.message_id;
    END LOOP;
END
$$;
