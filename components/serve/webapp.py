"""The web app: one static page (HTML, JS, CSS beside this file) plus a small proxy to the prediction API.

The page calls `api/...` on its own origin and this server forwards those calls to the API, so
the API needs no CORS settings and the browser never needs to reach it directly (in a cluster,
only the app has to be exposed).

A slow or hung API cannot take the app down: each forwarded call has short connect and read
time-outs (504 past them), at most `max_in_flight` calls wait on the API at once (more get an
immediate 503), and the static files are served from memory, never from the worker threads that
forwarded calls use.
"""

import contextlib
import http.client
import logging
import urllib.parse
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cityseg.components.serve.config import WebAppConfig

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent
PAGES = {
    "": ("webapp.html", "text/html"),
    "webapp.js": ("webapp.js", "text/javascript"),
    "webapp.css": ("webapp.css", "text/css"),
}
# Only what the page uses is forwarded; anything else is 404 here, not a request to the API.
API_ROUTES = ("predict", "images", "categories", "model", "readyz", "objects", "explain")
FORWARDED_HEADERS = (
    "content-type",
    "x-model-name",
    "x-model-version",
    "x-latency-ms",
    "x-inference-ms",
    "retry-after",
)


class ProxyError(Exception):
    """A forwarded call that ends in the app's own answer (413, 502, 503, 504) instead of the API's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _forward(config: WebAppConfig, path: str, method: str, body: bytes, content_type: str | None):
    """One call to the API: (status, body, the headers worth passing on); the API's errors pass through.

    Raises:
        ProxyError: 502 when the API cannot be reached, 504 when it does not answer in time.
    """
    api = urllib.parse.urlsplit(config.api)
    connection_class = http.client.HTTPSConnection if api.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(api.hostname, api.port, timeout=config.connect_timeout_s)
    try:
        try:
            connection.connect()
        except OSError as err:
            raise ProxyError(502, f"the prediction API at {config.api} cannot be reached: {err}") from err
        connection.sock.settimeout(config.read_timeout_s)
        headers = {"Content-Type": content_type} if content_type else {}
        # The API may answer (413, say) before it has read the whole body: then read its answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        headers = {name: response.headers[name] for name in FORWARDED_HEADERS if response.headers.get(name)}
        return response.status, response.read(), headers
    except TimeoutError as err:
        raise ProxyError(
            504, f"the prediction API at {config.api} did not answer within {config.read_timeout_s:g} s"
        ) from err
    except OSError as err:
        raise ProxyError(502, f"the prediction API at {config.api} cannot be reached: {err}") from err
    finally:
        connection.close()


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, read as it arrives and refused (413) as soon as it passes `max_bytes`."""
    limit_mb = max_bytes / 2**20
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise ProxyError(413, f"the request body is {int(declared)} bytes, over {limit_mb:g} MiB")
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise ProxyError(413, f"the request body is over {limit_mb:g} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def create_webapp(config: WebAppConfig) -> FastAPI:
    """The web app for the prediction API that `config` names."""
    app = FastAPI(title="cityseg web app", docs_url=None, redoc_url=None, openapi_url=None)
    pages = {page: ((STATIC / name).read_bytes(), media) for page, (name, media) in PAGES.items()}
    in_flight = 0  # only the event loop's thread touches it

    @app.api_route("/api/{route}", methods=["GET", "POST"])
    @app.api_route("/api/{route}/{rest:path}", methods=["GET", "POST"])
    async def proxy(request: Request, route: str, rest: str = "") -> Response:
        nonlocal in_flight
        if route not in API_ROUTES:
            return JSONResponse({"detail": f"/api/{route} is not an API route of this app"}, status_code=404)
        if in_flight >= config.max_in_flight:
            detail = f"{in_flight} calls are already waiting on the prediction API at {config.api}; try again"
            return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "1"})
        # The raw path keeps the id's percent-encoding exactly as the page sent it.
        path = request.scope["raw_path"].decode("ascii").removeprefix("/api")
        if request.url.query:
            path += f"?{request.url.query}"
        in_flight += 1
        try:
            body = await _read_body(request, int(config.max_upload_mb * 2**20))
            content_type = request.headers.get("content-type")
            status, content, headers = await run_in_threadpool(
                _forward, config, path, request.method, body, content_type
            )
        except ProxyError as err:
            if err.status != 413:
                log.warning("%s %s: %s", request.method, path, err)
            return JSONResponse({"detail": str(err)}, err.status)
        finally:
            in_flight -= 1
        return Response(content, status_code=status, headers=headers)

    @app.get("/{page:path}")
    async def page(page: str) -> Response:
        if page not in pages:
            return JSONResponse({"detail": f"no page {page!r}"}, status_code=404)
        content, media_type = pages[page]
        return Response(content, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return app
