"""The widget's files: `GET /chat` (a page with the widget), `GET /chat/widget.js` (what another site embeds
with one `<script>` tag) and its stylesheet. Plain files inside the package, read once when the channel is built."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from contactcenter.api.operations import Answer, Handler, Operation

PAGE = Operation(
    "GET",
    "/chat",
    "chatPage",
    "A page with the chat widget",
    {200: Answer("the page", media_type="text/html", schema={"type": "string"})},
)
SCRIPT = Operation(
    "GET",
    "/chat/widget.js",
    "chatWidgetScript",
    'The chat widget: `<script src=".../chat/widget.js"></script>` embeds it on a page of an allowed origin',
    {200: Answer("the script", media_type="text/javascript", schema={"type": "string"})},
)
STYLE = Operation(
    "GET",
    "/chat/widget.css",
    "chatWidgetStyle",
    "The chat widget's stylesheet (the script links it)",
    {200: Answer("the stylesheet", media_type="text/css", schema={"type": "string"})},
)

_FILES = {
    PAGE.path: ("chat.html", "text/html"),
    SCRIPT.path: ("widget.js", "text/javascript"),
    STYLE.path: ("widget.css", "text/css"),
}
# Browsers may keep the files a short while: a new release reaches visitors within minutes.
CACHE = "public, max-age=300"


class WidgetFiles:
    OPERATIONS = (PAGE, SCRIPT, STYLE)

    def __init__(self) -> None:
        folder = resources.files("channels.webchat") / "static"
        self._files = {
            path: ((folder / name).read_bytes(), content_type) for path, (name, content_type) in _FILES.items()
        }

    def routes(self) -> list[web.RouteDef]:
        return [operation.route(self._serving(operation.path)) for operation in self.OPERATIONS]

    def _serving(self, path: str) -> Handler:
        body, content_type = self._files[path]

        async def serve(request: web.Request) -> web.Response:
            return web.Response(
                body=body,
                content_type=content_type,
                charset="utf-8",
                headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"},
            )

        return serve
