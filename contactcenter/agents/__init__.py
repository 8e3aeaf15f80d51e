"""The agent side: notices to agents over the bus, and the desktop WebSocket gateway."""
