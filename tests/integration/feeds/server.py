#!/usr/bin/env python3
"""A static file server for the download-package tests.

Serves --root on 127.0.0.1 at a port the OS picks (written to --port-file once
listening). Options: --auth USER:PASSWORD (basic auth, 401 otherwise), --fail-first N
(answer the first N requests 503), --hold-until FILE (answer nothing until FILE exists),
--log FILE (one line per request: "METHOD PATH STATUS"), --tls CERT KEY (HTTPS).
"""
import argparse
import base64
import functools
import http.server
import os
import ssl
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--root", required=True)
parser.add_argument("--port-file", required=True)
parser.add_argument("--auth")
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--hold-until")
parser.add_argument("--log")
parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
args = parser.parse_args()

lock = threading.Lock()
state = {"requests": 0}


def record(line):
    if args.log:
        with lock, open(args.log, "a") as log:
            log.write(line + "\n")


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def gate(self):
        record(f"START {self.command} {self.path}")
        if args.hold_until:
            deadline = time.time() + 120
            while not os.path.exists(args.hold_until) and time.time() < deadline:
                time.sleep(0.01)
        with lock:
            state["requests"] += 1
            n = state["requests"]
        if n <= args.fail_first:
            return self.refuse(503, "failing on purpose")
        if args.auth:
            expected = "Basic " + base64.b64encode(args.auth.encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.refuse(401, "bad credentials", {"WWW-Authenticate": 'Basic realm="feed"'})
        return True

    def refuse(self, status, text, headers=None):
        body = text.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    def send_response(self, code, message=None):
        # Logged before the client can see the answer, so a test that reads the log after
        # the client finished sees every request.
        record(f"{self.command} {self.path} {code}")
        super().send_response(code, message)

    def do_GET(self):
        if self.gate():
            super().do_GET()

    def do_HEAD(self):
        if self.gate():
            super().do_HEAD()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=args.root))
if args.tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls[0], args.tls[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.replace(tmp, args.port_file)
server.serve_forever()
