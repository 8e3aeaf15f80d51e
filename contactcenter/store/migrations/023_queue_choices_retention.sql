-- Migration 013's contact_queue_choices were never deleted. A choice is read once, when the router records its
-- contact (cc_record_inbound, before it stores the interaction; a redelivery finds the interaction stored and
-- reads no choice): it goes as that interaction is stored. A choice whose contact never came (its publish
-- failed, and Twilio gave up) goes after a day (`CALL_ENQUEUED` in channels/twilio/voice_store.py).
ALTER TABLE contact_queue_choices ADD COLUMN chosen_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX contact_queue_choices_by_age ON contact_queue_choices (chosen_at);

CREATE FUNCTION cc_forget_queue_choice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM contact_queue_choices WHERE channel = NEW.channel AND provider_id = NEW.provider_id;
    RETURN NULL;
END
$$;

-- Only voice chooses queues today: the other channels' inserts pay nothing.
CREATE TRIGGER interactions_forget_queue_choice AFTER INSERT ON interactions
    FOR EACH ROW WHEN (NEW.channel = 'voice' AND NEW.direction = 'inbound')
    EXECUTE FUNCTION cc_forget_queue_choice();

DELETE FROM contact_queue_choices c
 WHERE EXISTS (SELECT 1 FROM interactions x
                WHERE x.channel = c.channel AND x.direction = 'inbound' AND x.provider_id = c.provider_id);
