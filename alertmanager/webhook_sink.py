#!/usr/bin/env python3
"""Tiny webhook sink for Alertmanager: records every notification it receives.

    python3 alertmanager/webhook_sink.py --host 127.0.0.1 --port 9097 --out .lab/webhook-sink/alerts.jsonl

Standard library only. Run by scripts/native/up.sh in native mode and, in compose,
by the `webhook-sink` service (python:3.11-slim image with this file mounted).
Alertmanager's only receiver points here (alertmanager/alertmanager.yml).

  POST <any path>   an Alertmanager webhook payload: appended as one JSON line
                    {"received_at": ..., "path": ..., "payload": {...}} to --out
  GET  /alerts      JSON list of everything received so far (oldest first);
                    ?alertname=X keeps notifications that carry an alert named X
  GET  /healthz     "ok"
  DELETE /alerts    forget everything received (truncates --out)

Options default to the environment: LAB_WEBHOOK_SINK_HOST (127.0.0.1),
LAB_WEBHOOK_SINK_PORT (9097), LAB_WEBHOOK_SINK_FILE (alerts.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 10 * 1024 * 1024


class Store:
    """Append-only JSON-lines file guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def append(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with self.lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read(self) -> list[dict]:
        with self.lock:
            text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def clear(self) -> None:
        with self.lock:
            self.path.write_text("", encoding="utf-8")


def make_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ml-lab-webhook-sink/1"

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

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._send(400, {"error": "missing or oversized body"})
                return
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                self._send(400, {"error": f"body is not JSON: {exc}"})
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
    args = parser.parse_args(argv)

    store = Store(args.out)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(store))
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
