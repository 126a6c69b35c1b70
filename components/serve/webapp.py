"""The web app: one static page (HTML, JS, CSS beside this file) plus a small proxy to the prediction API.

The page calls `api/...` on its own origin and this server forwards those calls to the API, so
the API needs no CORS settings and the browser never needs to reach it directly (in a cluster,
only the app has to be exposed).
"""

import logging
import urllib.error
import urllib.request
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent
PAGES = {"": "webapp.html", "webapp.js": "webapp.js", "webapp.css": "webapp.css"}
# Only what the page uses is forwarded; anything else is 404 here, not a request to the API.
API_ROUTES = ("predict", "images", "categories", "model", "readyz")
FORWARDED_HEADERS = (
    "content-type",
    "x-model-name",
    "x-model-version",
    "x-latency-ms",
    "x-inference-ms",
    "retry-after",
)
PROXY_TIMEOUT_S = 120


def _forward(
    url: str, method: str, body: bytes, content_type: str | None
) -> tuple[int, bytes, dict[str, str]]:
    """One request to the API: (status, body, the headers worth passing on); API errors pass through."""
    request = urllib.request.Request(url, data=body or None, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=PROXY_TIMEOUT_S) as response:
            return response.status, response.read(), _headers(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), _headers(err.headers)


def _headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name)}


def create_webapp(api_url: str) -> FastAPI:
    """The web app for the prediction API at `api_url`."""
    api_url = api_url.rstrip("/")
    app = FastAPI(title="cityseg web app", docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/api/{route}", methods=["GET", "POST"])
    @app.api_route("/api/{route}/{rest:path}", methods=["GET", "POST"])
    async def proxy(request: Request, route: str, rest: str = "") -> Response:
        if route not in API_ROUTES:
            return JSONResponse({"detail": f"/api/{route} is not an API route of this app"}, status_code=404)
        # The raw path keeps the id's percent-encoding exactly as the page sent it.
        url = f"{api_url}{request.scope['raw_path'].decode('ascii').removeprefix('/api')}"
        if request.url.query:
            url += f"?{request.url.query}"
        body = await request.body()
        try:
            status, content, headers = await run_in_threadpool(
                _forward, url, request.method, body, request.headers.get("content-type")
            )
        except (urllib.error.URLError, OSError) as err:
            log.warning("API %s unreachable: %s", api_url, err)
            return JSONResponse({"detail": f"the prediction API at {api_url} cannot be reached: {err}"}, 502)
        return Response(content, status_code=status, headers=headers)

    @app.get("/{page:path}")
    async def page(page: str) -> Response:
        if page not in PAGES:
            return JSONResponse({"detail": f"no page {page!r}"}, status_code=404)
        return FileResponse(STATIC / PAGES[page], headers={"Cache-Control": "no-cache"})

    return app
