"""Signed webhooks: receivers other systems register for the events of the `<namespace>.events` exchange.

`api` registers them, `dispatcher` records a delivery per matching event (before the event is acknowledged on
the bus) and sends each webhook's deliveries in event order with `sender`, retrying with `backoff` and parking
after the last retry; `destinations` keeps deliveries away from loopback and private addresses.
"""
