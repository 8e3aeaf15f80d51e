"""Events for other systems (issue 15): the outbox in PostgreSQL (`outbox`), the stream that carries live
state's events into it (`stream`), the relay that publishes it on the events exchange (`relay`), and the
AsyncAPI document of what is published (`asyncapi`). The models are `schema.events`."""
