-- Supervisors (issue 20): people the admin creates like agents, each watching the queues it supervises; every
-- action one takes is audited here, with its event written in the same transaction. Each queue has its
-- service-level target: the share (`service_level_goal`) of contacts to answer within `service_level_seconds`.
ALTER TABLE queues
    ADD COLUMN service_level_seconds integer NOT NULL DEFAULT 20
        CHECK (service_level_seconds BETWEEN 1 AND 86400),
    ADD COLUMN service_level_goal numeric(4, 3) NOT NULL DEFAULT 0.8
        CHECK (service_level_goal > 0 AND service_level_goal <= 1);

CREATE TABLE supervisors (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,  -- sha256 of the token, as agents' tokens
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE supervisor_queues (
    supervisor_id uuid NOT NULL REFERENCES supervisors (id) ON DELETE CASCADE,
    queue_id      uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    PRIMARY KEY (supervisor_id, queue_id)
);

-- Who did what to whom: `actor` is a supervisor's id, or null for the admin.
CREATE TABLE supervisor_actions (
    id              uuid PRIMARY KEY,
    actor           uuid REFERENCES supervisors (id) ON DELETE SET NULL,
    action          text        NOT NULL CHECK (action IN ('agent_state', 'move')),
    agent_id        uuid REFERENCES agents (id) ON DELETE SET NULL,
    conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL,
    queue_id        uuid REFERENCES queues (id) ON DELETE SET NULL,
    detail          jsonb       NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX supervisor_actions_by_time ON supervisor_actions (taken_at);
