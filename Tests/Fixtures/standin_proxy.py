#!/usr/bin/env python3
"""Stand-in for Docker Sandboxes' credential proxy, for ccdeck's tests.

The real proxy runs outside the microVM and adds the user's credential to the agent's model
requests, so the sandbox holds only a placeholder. This one listens on loopback, replaces the
Authorization header of every request with `Bearer <token>` (the token read from --token-file,
as Docker Desktop reads credentials at start, not from ccdeck), and forwards to --upstream,
streaming the answer back. It prints `PORT <n>` once listening.
"""
import argparse
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        up = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "x-api-key")}
        headers["Authorization"] = "Bearer " + self.server.token
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        chunked = False
        for k, v in resp.getheaders():
            if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
                continue
            if k.lower() in ("connection", "content-length") and chunked:
                continue
            self.send_header(k, v)
        if chunked or resp.getheader("Content-Length") is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                data = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.end_headers()
            self.wfile.write(resp.read())
        conn.close()

    do_POST = forward
    do_GET = forward
    do_HEAD = forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--token-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    srv.daemon_threads = True
    srv.upstream = args.upstream
    with open(args.token_file) as f:
        srv.token = f.read().strip()
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
