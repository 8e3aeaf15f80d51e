"""Web chat behind a load balancer: the visitor's socket on one API process, the agent's on another, the router
a third — the agent's reply reaches the visitor at once, and the visitor's token resumes it on any of them."""

from __future__ import annotations

from pydantic import SecretStr

from contactcenter.host.app import Role
from contactcenter.settings import Settings
from tests.running import run_service
from tests.visitors import ChatVisitor

CHAT_SECRET = "a-chat-secret-every-api-process-shares-0123456789"


async def test_a_reply_from_an_agent_on_another_api_process_reaches_the_visitor_and_a_token_resumes_anywhere(
    service_settings: Settings,
) -> None:
    settings = service_settings.model_copy(update={"chat_secret": SecretStr(CHAT_SECRET)})
    async with (
        run_service(settings, Role.ROUTER),
        run_service(settings, Role.API) as visitors_side,
        run_service(settings, Role.API) as agents_side,
    ):
        await agents_side.create_queue("web", ["chat"])
        desktop = await agents_side.available_agent(queues=("web",))
        visitor = ChatVisitor(visitors_side.http, visitors_side.base_url)
        await visitor.connect()
        await visitor.say("anyone there?")

        offer = await desktop.receive("offer")
        conversation_id = offer["reservation"]["conversation_id"]
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        assert (await visitor.receive("agent"))["activity"] == "joined"
        await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Yes: Ann."}, "replied")
        assert (await visitor.receive("message"))["text"] == "Yes: Ann."
        await visitor.close()

        elsewhere = ChatVisitor(agents_side.http, agents_side.base_url, token=visitor.token)
        welcome = await elsewhere.connect(after=0)
        assert welcome["visitor_id"] == visitor.welcome["visitor_id"]
        assert [(e["from"], e["text"]) for e in welcome["history"]] == [
            ("visitor", "anyone there?"),
            ("agent", "Yes: Ann."),
        ]
        await elsewhere.close()
        await desktop.close()
