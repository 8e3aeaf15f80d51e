"""contactcenter: the service's core and its host. A map:

- `host/`: what runs it — the CLI (`contactcenter serve|migrate`, `python -m contactcenter`), the app assembly
  with its one list of channels, the opened services (embedded or production adapters), health, `/metrics`,
  the guarded HTTP site. Nothing but `__main__` imports it.
- Ports and their adapters: `bus/` (the bus, and `bus/interactions.py`: the interactions exchange), `live/`
  (live state in Redis), `store/` (PostgreSQL), `agents/` (notices, the desktop gateway, replies and the
  outbound port channels implement). Each port is a `typing.Protocol` in the package's `__init__.py`.
- `api/`: the HTTP API's handlers and its operations (the OpenAPI document is built from them).
- The foundation, top-level modules every layer may use: `errors` (and `http_errors`, their one mapping to
  answers), `settings`, `clock`, `batching`, `identities`, `logs`, `metrics`, `periodic`, `origins`, `auth`.

Channels (`channels/`) and routing (`routing/`) sit above the core and below the host; see
docs/architecture.md.
"""
