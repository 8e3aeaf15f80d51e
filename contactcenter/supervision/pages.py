"""The people's pages, plain HTML, JavaScript and CSS shipped in the package (`contactcenter/static/`), nothing
fetched from elsewhere: the supervisors' wallboard (`GET /supervisor`) and the agent console (`GET /agent`).
They speak the public API like any client: the figures' stream, the agent socket, the card."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from contactcenter.api.operations import Answer, Operation, Parameter, failures
from contactcenter.errors import NotFound

HTML = {"type": "string"}
WALLBOARD = Operation(
    "GET",
    "/supervisor",
    "getWallboard",
    "The supervisors' wallboard (a page)",
    {200: Answer("the page", media_type="text/html", schema=HTML)},
)
CONSOLE = Operation(
    "GET",
    "/agent",
    "getAgentConsole",
    "The agent console (a page)",
    {200: Answer("the page", media_type="text/html", schema=HTML)},
)
ASSET = Operation(
    "GET",
    "/pages/{name}",
    "getPageAsset",
    "A script or style sheet of the pages",
    {200: Answer("the file", media_type="text/plain", schema=HTML), **failures(404)},
    parameters=(Parameter("name", "path", "the file's name", required=True),),
)
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
ASSETS = ("supervisor.js", "agent.js", "pages.css")
# The pages run only their own scripts and styles, and talk only to this service.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> str:
    return (resources.files("contactcenter") / "static" / name).read_text("utf-8")


class Pages:
    OPERATIONS = (WALLBOARD, CONSOLE, ASSET)

    def __init__(self) -> None:
        # Read once: they change with the package only.
        self._files = {name: _read(name) for name in ("supervisor.html", "agent.html", *ASSETS)}

    def routes(self) -> list[web.RouteDef]:
        return [WALLBOARD.route(self.wallboard), CONSOLE.route(self.console), ASSET.route(self.asset)]

    def _file(self, name: str) -> web.Response:
        content_type = CONTENT_TYPES[name[name.rindex(".") :]]
        return web.Response(text=self._files[name], content_type=content_type, headers=SECURITY_HEADERS)

    async def wallboard(self, _request: web.Request) -> web.Response:
        return self._file("supervisor.html")

    async def console(self, _request: web.Request) -> web.Response:
        return self._file("agent.html")

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise NotFound("no such file", field="name")
        return self._file(name)
