"""The host: what runs the service — the CLI, the app assembly (roles, the list of channels), the opened
services (embedded or production adapters), health, the metrics endpoint and the guarded HTTP site."""
