-- Events can be switched off (CC_EVENTS=false: a center with no other system to tell, and the bench's
-- comparison without them). The pool then sets `cc.events` to 'off' on its connections (store.open_pool), and
-- the rows the changes write into the outbox are dropped before they are stored; with events on, the one
-- cost is the trigger's WHEN test per row, evaluated without calling the function.
CREATE FUNCTION cc_event_dropped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;
CREATE TRIGGER events_off BEFORE INSERT ON events FOR EACH ROW
    WHEN (current_setting('cc.events', true) = 'off') EXECUTE FUNCTION cc_event_dropped();

-- Nobody to wake when events are off.
DROP TRIGGER events_written ON events;
CREATE TRIGGER events_written AFTER INSERT ON events FOR EACH STATEMENT
    WHEN (current_setting('cc.events', true) IS DISTINCT FROM 'off') EXECUTE FUNCTION cc_events_written();
