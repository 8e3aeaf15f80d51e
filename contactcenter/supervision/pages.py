"""The people's pages, plain HTML, JavaScript and CSS shipped in the package (`contactcenter/static/`), nothing
fetched from elsewhere: the supervisors' wallboard (`GET /supervisor`) and the agent console (`GET /agent`).
They speak the public API like any client: the figures' stream, the agent socket, the card."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from contactcenter.api.operations import Answer, Operation, Parameter, failures
from contactcenter.errors import NotFound

HTML = {"type": "string"}
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
SCRIPTS = ("supervisor", "agent")
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
SCRIPT = Operation(
    "GET",
    "/pages/{name}.js",
    "getPageScript",
    "A page's script",
    {200: Answer("the script", media_type="text/javascript", schema=HTML), **failures(404)},
    parameters=(
        Parameter("name", "path", "the page", required=True, schema={"type": "string", "enum": list(SCRIPTS)}),
    ),
)
STYLE = Operation(
    "GET",
    "/pages/pages.css",
    "getPageStyle",
    "The pages' style sheet",
    {200: Answer("the style sheet", media_type="text/css", schema=HTML)},
)
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
    OPERATIONS = (WALLBOARD, CONSOLE, SCRIPT, STYLE)

    def __init__(self) -> None:
        # Read once: they change with the package only.
        self._files = {
            name: _read(name) for name in ("supervisor.html", "agent.html", "pages.css", *(f"{n}.js" for n in SCRIPTS))
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            WALLBOARD.route(self.wallboard),
            CONSOLE.route(self.console),
            SCRIPT.route(self.script),
            STYLE.route(self.style),
        ]

    def _file(self, name: str) -> web.Response:
        content_type = CONTENT_TYPES[name[name.rindex(".") :]]
        return web.Response(text=self._files[name], content_type=content_type, headers=SECURITY_HEADERS)

    async def wallboard(self, _request: web.Request) -> web.Response:
        return self._file("supervisor.html")

    async def console(self, _request: web.Request) -> web.Response:
        return self._file("agent.html")

    async def script(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in SCRIPTS:
            raise NotFound("no such script", field="name")
        return self._file(f"{name}.js")

    async def style(self, _request: web.Request) -> web.Response:
        return self._file("pages.css")
