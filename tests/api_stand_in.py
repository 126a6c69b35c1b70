"""The HTTP side of the API stand-ins (Kubernetes, KFP): a request handler that reads and answers JSON."""

import json
from http.server import BaseHTTPRequestHandler


class JSONHandler(BaseHTTPRequestHandler):
    """Reads JSON request bodies and answers JSON; logs no request, so a test's output stays its own."""

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: dict) -> None:
        """Answer `status` with `body` as JSON."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def json_body(self):
        """The request's JSON body; None when it has none."""
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None
