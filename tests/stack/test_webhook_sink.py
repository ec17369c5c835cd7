"""alertmanager/webhook_sink.py, run as the process the stack runs: it keeps what Alertmanager
sends, refuses what is not a notification, and stays bounded (body, storage, slow and many clients)."""

import socket
import subprocess
import sys
import time

import pytest
import requests

from lab.dev.stack import free_ports, http_ok, poll
from lab.repo import ROOT

SINK = ROOT / "alertmanager" / "webhook_sink.py"
sys.path.insert(0, str(SINK.parent))
import webhook_sink  # noqa: E402  (a script, not a package: loaded from its directory)

NOTIFICATION = {"version": "4", "status": "firing", "receiver": "webhook-sink", "groupKey": "{}:{}",
                "alerts": [{"status": "firing", "labels": {"alertname": "MLLabOverfitting", "severity": "warning"},
                            "annotations": {"summary": "s"}}]}


@pytest.fixture
def sink(tmp_path):
    port = free_ports(1)[0]
    p = subprocess.Popen([sys.executable, str(SINK), "--host", "127.0.0.1", "--port", str(port),
                          "--out", str(tmp_path / "alerts.jsonl")], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    poll("the sink's /healthz", lambda: http_ok(f"{url}/healthz"), 20, 0.1)
    yield url
    p.kill()
    p.wait()


def test_a_notification_is_kept_and_filtered_by_alertname(sink):
    assert requests.post(sink, json=NOTIFICATION, timeout=5).status_code == 200
    assert [r["payload"] for r in requests.get(f"{sink}/alerts", timeout=5).json()] == [NOTIFICATION]
    assert requests.get(f"{sink}/alerts", params={"alertname": "Other"}, timeout=5).json() == []


@pytest.mark.parametrize("body,status", [
    ({"alerts": []}, 422),  # no version, no alerts
    ({**NOTIFICATION, "version": "3"}, 422),
    ({**NOTIFICATION, "alerts": [{"status": "bogus", "labels": {"alertname": "X"}}]}, 422),
    ({**NOTIFICATION, "alerts": [{"status": "firing", "labels": {"severity": "none"}}]}, 422),  # no alertname
    ({**NOTIFICATION, "alerts": [{"status": "firing", "labels": {"alertname": 3}}]}, 422),
    ([1, 2], 422),
])
def test_what_is_not_an_alertmanager_notification_is_refused_and_not_stored(sink, body, status):
    r = requests.post(sink, json=body, timeout=5)
    assert r.status_code == status and "not an Alertmanager notification" in r.json()["error"]
    assert requests.get(f"{sink}/alerts", timeout=5).json() == []


def test_bodies_that_are_not_json_or_too_large_are_refused(sink):
    assert requests.post(sink, data=b"{nope", timeout=5).status_code == 400
    assert requests.post(sink, data=b"x" * (webhook_sink.MAX_BODY + 1), timeout=10).status_code == 413


def test_a_sender_that_stalls_does_not_hold_the_sink(sink):
    host, port = sink.removeprefix("http://").split(":")
    stalled = [socket.create_connection((host, int(port))) for _ in range(webhook_sink.MAX_CLIENTS)]
    try:
        for s in stalled:  # a header line, then nothing: each holds one of the sink's slots
            s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n")
        time.sleep(0.5)
        with pytest.raises(requests.RequestException):  # every slot taken: turned away at once
            requests.get(f"{sink}/healthz", timeout=5)
        # after the read timeout the stalled senders are dropped and the sink answers again
        poll("the sink's /healthz after the read timeout", lambda: http_ok(f"{sink}/healthz"),
             webhook_sink.READ_TIMEOUT_S + 10)
    finally:
        for s in stalled:
            s.close()


def test_storage_rotates_and_reads_see_the_backup(tmp_path):
    store = webhook_sink.Store(tmp_path / "a.jsonl", max_bytes=2000)
    for i in range(80):  # ~5,600 bytes: more than the file and its one backup hold
        store.append({"i": i, "pad": "x" * 50})
    assert (tmp_path / "a.jsonl.1").exists()
    assert (tmp_path / "a.jsonl").stat().st_size <= 2000 and (tmp_path / "a.jsonl.1").stat().st_size <= 2000
    kept = [r["i"] for r in store.read()]
    assert kept == sorted(kept) and kept[-1] == 79 and len(kept) < 80  # the oldest went, order kept
    store.clear()
    assert store.read() == [] and not (tmp_path / "a.jsonl.1").exists()


def test_with_a_token_file_writes_need_the_token_and_reads_stay_open(tmp_path):
    port = free_ports(1)[0]
    (tmp_path / "token").write_text("s3cret-token\n")
    p = subprocess.Popen([sys.executable, str(SINK), "--host", "127.0.0.1", "--port", str(port),
                          "--out", str(tmp_path / "alerts.jsonl"), "--token-file", str(tmp_path / "token")],
                         stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        poll("the sink's /healthz", lambda: http_ok(f"{url}/healthz"), 20, 0.1)
        token = {"Authorization": "Bearer s3cret-token"}
        assert requests.post(url, json=NOTIFICATION, timeout=5).status_code == 401
        assert requests.post(url, json=NOTIFICATION, headers={"Authorization": "Bearer guess"}, timeout=5).status_code == 401
        assert requests.delete(f"{url}/alerts", timeout=5).status_code == 401
        assert requests.get(f"{url}/alerts", timeout=5).json() == []  # nothing stored by the refused post
        assert requests.post(url, json=NOTIFICATION, headers=token, timeout=5).status_code == 200
        assert len(requests.get(f"{url}/alerts", timeout=5).json()) == 1
        assert requests.delete(f"{url}/alerts", headers=token, timeout=5).status_code == 200
    finally:
        p.kill()
        p.wait()


def test_an_empty_or_missing_token_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty").write_text("\n")
    for path, says in ((tmp_path / "empty", "is empty"), (tmp_path / "missing", "No such file")):
        proc = subprocess.run([sys.executable, str(SINK), "--port", "0", "--out", str(tmp_path / "a.jsonl"),
                               "--token-file", str(path)], capture_output=True, text=True, timeout=20)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
