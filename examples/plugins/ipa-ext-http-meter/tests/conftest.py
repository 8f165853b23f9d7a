"""A simulated PDU: an HTTP server on 127.0.0.1 whose outlet counters the test controls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest_plugins = ["ipa_ext.testing.fixtures"]


class Device:
    def __init__(self) -> None:
        self.outlets = {"1": 100.0, "2": 5.0}   # cumulative Wh
        self.status = 200
        self.body: bytes | None = None           # override the JSON document
        self.requests = 0


@pytest.fixture()
def pdu():
    device = Device()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            device.requests += 1
            body = device.body if device.body is not None else json.dumps(
                {"outlets": [{"id": k, "energy_wh": v, "power_w": 50.0} for k, v in device.outlets.items()]}
            ).encode()
            self.send_response(device.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    device.url = f"http://127.0.0.1:{server.server_address[1]}/api/energy"
    try:
        yield device
    finally:
        server.shutdown()
        server.server_close()
