"""The router: consumes inbound interactions, resolves the client, stores, queues and reserves an agent."""
