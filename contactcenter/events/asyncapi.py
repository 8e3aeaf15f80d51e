"""The AsyncAPI 3.0 document of the message API (`GET /api/v1/asyncapi.json`): the events exchange, one
message and one operation per event type, and the interactions exchange — made from `schema.events`' catalogue
and the models, never written by hand."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schema import Interaction
from schema.events import CONTENT_TYPE, EVENT_KINDS, TYPE_PREFIX, CloudEvent, EventKind

AMQP_BINDING_VERSION = "0.3.0"


def _message_name(kind: EventKind) -> str:
    return kind.name.replace(".", "_")


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def asyncapi_document(namespace: str = "cc") -> dict[str, Any]:
    events_exchange, interactions_exchange = f"{namespace}.events", f"{namespace}.interactions"
    envelopes: list[type[BaseModel]] = [CloudEvent[kind.data] for kind in EVENT_KINDS]  # type: ignore[name-defined]  # a parametrised generic per type, made at run time
    usages: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "serialization") for model in envelopes]
    usages.append((Interaction, "serialization"))
    keyed, definitions = models_json_schema(usages, ref_template="#/components/schemas/{model}")
    refs = cast("dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]", keyed)

    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for kind, envelope in zip(EVENT_KINDS, envelopes, strict=True):
        name = _message_name(kind)
        messages[name] = {
            "name": kind.type,
            "title": kind.name,
            "summary": f"{kind.emitted_when[0].upper()}{kind.emitted_when[1:]}.",
            "contentType": CONTENT_TYPE,
            "payload": refs[(envelope, "serialization")],
        }
        operations[name] = {
            "action": "send",
            "title": f"publish {kind.name}",
            "summary": f"Routing key `{kind.name}`; order key `{kind.partition}:<id>`.",
            "channel": {"$ref": "#/channels/events"},
            "messages": [{"$ref": f"#/channels/events/messages/{name}"}],
            "bindings": {"amqp": {"cc": [kind.name], "deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
        }
    interaction = refs[(Interaction, "serialization")]
    messages["interaction"] = {
        "name": "interaction",
        "title": "inbound interaction(s)",
        "summary": "One contact from a channel adapter, or several of one channel published together.",
        "contentType": "application/json",
        "payload": {"oneOf": [interaction, {"type": "array", "items": interaction, "minItems": 1}]},
    }
    operations["publishInteraction"] = {
        "action": "send",
        "summary": "Channel adapters hand contacts to the routers; routing key `interaction.<channel>.<direction>`.",
        "channel": {"$ref": "#/channels/interactions"},
        "messages": [{"$ref": "#/channels/interactions/messages/interaction"}],
    }
    operations["routeInteraction"] = {
        "action": "receive",
        "summary": "Routers consume contacts as competing consumers (shared quorum queue).",
        "channel": {"$ref": "#/channels/interactions"},
        "messages": [{"$ref": "#/channels/interactions/messages/interaction"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "contactcenter events",
            "version": version("contactcenter"),
            "description": "CloudEvents 1.0 (structured JSON) on the events topic exchange: routing key = the type "
            f"without `{TYPE_PREFIX}`; `id` ascending, per `partitionkey` in order; deduplicate by `id`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "broker": {"host": "localhost:5672", "protocol": "amqp", "description": "the RabbitMQ of CC_AMQP_URL"}
        },
        "channels": {
            "events": {
                "address": events_exchange,
                "title": "events",
                "description": "Every state change, for other systems; bind a queue with the types you want.",
                "messages": {
                    name: {"$ref": f"#/components/messages/{name}"} for name in messages if name != "interaction"
                },
                "bindings": _exchange_binding(events_exchange),
            },
            "interactions": {
                "address": interactions_exchange,
                "title": "interactions",
                "description": "Inbound contacts from the channel adapters to the routers.",
                "messages": {"interaction": {"$ref": "#/components/messages/interaction"}},
                "bindings": _exchange_binding(interactions_exchange),
            },
        },
        "operations": operations,
        "components": {"schemas": definitions.get("$defs", {}), "messages": messages},
    }
