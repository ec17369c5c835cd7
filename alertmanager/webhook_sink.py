#!/usr/bin/env python3
"""Tiny webhook sink for Alertmanager: records every notification it receives.

    python3 alertmanager/webhook_sink.py --host 127.0.0.1 --port 9097 --out .lab/webhook-sink/alerts.jsonl

Standard library only. Run by scripts/native/up.sh in native mode and, in compose,
by the `webhook-sink` service (python:3.11-slim image with this file mounted).
Alertmanager's only receiver points here (alertmanager/alertmanager.yml).

  POST <any path>   an Alertmanager webhook payload (version 4: a list of alerts, each with a
                    status and an alertname label; anything else is refused with 422):
                    appended as one JSON line {"received_at": ..., "path": ..., "payload": {...}} to --out
  GET  /alerts      JSON list of everything received so far (oldest first);
                    ?alertname=X keeps notifications that carry an alert named X
  GET  /healthz     "ok"
  DELETE /alerts    forget everything received (truncates --out)

With --token-file (the shared-host profile), POST and DELETE need `Authorization: Bearer <the
file's token>` (401 otherwise); GET stays open.

Options default to the environment: LAB_WEBHOOK_SINK_HOST (127.0.0.1),
LAB_WEBHOOK_SINK_PORT (9097), LAB_WEBHOOK_SINK_FILE (alerts.jsonl).

Hardened for a shared host: a body of at most 1 MiB (a notification of 100 alerts is ~100 KB);
storage bounded by rotation (at 16 MiB the file becomes <out>.1, one backup kept, reads see
both); a client must send its request within 10 s (no thread held by a slow sender); at
most 32 requests at once (more are turned away at once, not queued).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024  # then rotate: <out> -> <out>.1 (~16,000 notifications each)
READ_TIMEOUT_S = 10
MAX_CLIENTS = 32
STATUSES = ("firing", "resolved")


def invalid(payload: object) -> str | None:
    """Why `payload` is not an Alertmanager webhook notification (version 4), or None."""
    if not isinstance(payload, dict):
        return "the body must be a JSON object"
    if payload.get("version") != "4":
        return "version must be \"4\" (Alertmanager's webhook format)"
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        return "alerts must be a non-empty list"
    for i, a in enumerate(alerts):
        if not isinstance(a, dict) or a.get("status") not in STATUSES:
            return f"alerts[{i}].status must be one of {', '.join(STATUSES)}"
        labels = a.get("labels")
        if not isinstance(labels, dict) or not isinstance(labels.get("alertname"), str) or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            return f"alerts[{i}].labels must map strings to strings, with an alertname"
    return None


class Store:
    """Append-only JSON-lines file guarded by a lock, rotated at max_bytes (one backup)."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.backup = path.with_name(path.name + ".1")
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with self.lock:
            if self.path.stat().st_size + len(line) + 1 > self.max_bytes:
                os.replace(self.path, self.backup)  # the oldest backup goes
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")

    def read(self) -> list[dict]:
        with self.lock:
            text = "".join(p.read_text(encoding="utf-8") for p in (self.backup, self.path) if p.exists())
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def clear(self) -> None:
        with self.lock:
            self.backup.unlink(missing_ok=True)
            self.path.write_text("", encoding="utf-8")


class BoundedServer(ThreadingHTTPServer):
    """A thread per request, at most `max_clients` at once: more are closed at once."""

    daemon_threads = True

    def __init__(self, address, handler, max_clients: int = MAX_CLIENTS) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_clients)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_handler(store: Store, token: str | None = None) -> type[BaseHTTPRequestHandler]:
    """token: when set, a POST or DELETE must carry `Authorization: Bearer <token>` (the shared-host
    profile); reads stay open."""
    expected = f"Bearer {token}".encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        server_version = "ml-lab-webhook-sink/1"
        timeout = READ_TIMEOUT_S  # per socket operation: a sender that stalls is dropped

        def _send(self, status: int, body: object) -> None:
            data = (body if isinstance(body, str) else json.dumps(body, indent=1)).encode()
            self.send_response(status)
            ctype = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._send(200, "ok\n")
            elif url.path == "/alerts":
                records = store.read()
                names = parse_qs(url.query).get("alertname")
                if names:
                    records = [
                        r
                        for r in records
                        if any(
                            a.get("labels", {}).get("alertname") in names
                            for a in r.get("payload", {}).get("alerts", [])
                        )
                    ]
                self._send(200, records)
            else:
                self._send(404, {"error": f"unknown path {url.path}"})

        def _authorised(self) -> bool:
            if expected is None or hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected):
                return True
            self.close_connection = True  # the body, if any, is not read
            self._send(401, {"error": "this sink takes writes with its bearer token only (shared-host profile)"})
            return False

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length <= 0:
                self._send(400, {"error": "missing body or Content-Length"})
                return
            if length > MAX_BODY:
                self._send(413, {"error": f"body larger than {MAX_BODY} bytes"})
                return
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                self._send(400, {"error": f"body is not JSON: {exc}"})
                return
            reason = invalid(payload)
            if reason:
                self._send(422, {"error": f"not an Alertmanager notification: {reason}"})
                return
            store.append(
                {
                    "received_at": datetime.now(timezone.utc).isoformat(),
                    "path": urlsplit(self.path).path,
                    "payload": payload,
                }
            )
            self._send(200, {"status": "recorded"})

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            if urlsplit(self.path).path == "/alerts":
                store.clear()
                self._send(200, {"status": "cleared"})
            else:
                self._send(404, {"error": "unknown path"})

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {fmt % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("LAB_WEBHOOK_SINK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_WEBHOOK_SINK_PORT", "9097")))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("LAB_WEBHOOK_SINK_FILE", "alerts.jsonl")))
    parser.add_argument("--token-file", type=Path, help="require this file's bearer token on POST and DELETE")
    args = parser.parse_args(argv)
    token = None
    if args.token_file:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
        if not token:
            parser.error(f"--token-file: {args.token_file} is empty")

    store = Store(args.out)
    server = BoundedServer((args.host, args.port), make_handler(store, token))
    print(f"webhook sink listening on http://{args.host}:{args.port}, writing {args.out}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
