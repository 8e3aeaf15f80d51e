-- A queue's wrap-up time (issue 20): after completing a contact of the queue, its agent is in wrap-up this many
-- seconds (offered nothing) unless it says it is ready sooner. NULL: the service's CC_WRAP_UP_SECONDS.
ALTER TABLE queues
    ADD COLUMN wrap_up_seconds integer CHECK (wrap_up_seconds BETWEEN 0 AND 3600);
