"""A real collector (``ardoise-collector`` on SQLite) on the host's loopback, which the guest
reaches through QEMU's user-mode network as 10.0.2.2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

GUEST_HOST = "10.0.2.2"  # QEMU user-net: the host's 127.0.0.1 seen from the guest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.db = f"sqlite:///{workdir / 'collector.db'}"
        self.log = workdir / "collector.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def guest_url(self) -> str:
        return f"http://{GUEST_HOST}:{self.port}"

    def _cli(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "server_stub.cli", *args, "--db", self.db],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"ardoise-collector {' '.join(args)}: {r.stderr.strip()}"
        return r.stdout

    def start(self) -> "Collector":
        self._cli("migrate")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server_stub.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--db", self.db],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/healthz")
                return self
            except (urllib.error.URLError, ConnectionError):
                assert self.proc.poll() is None, f"collector exited: {self.log.read_text()[-2000:]}"
                time.sleep(0.2)
        raise AssertionError("collector did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def token(self, lot: str) -> str:
        return json.loads(self._cli("token", "create", "--lot", lot, "--json"))["token"]

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.load(r)

    def verify(self, envelope: dict | bytes) -> dict:
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        req = urllib.request.Request(self.url + "/api/v1/verify", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as exc:
            return json.load(exc)

    def stations(self) -> list[dict]:
        return json.loads(self._cli("station", "list", "--json"))

    def certificates(self, lot: str) -> list[dict]:
        """Every stored certificate of ``lot``: the stored record, with its payload."""
        items = self.get(f"/api/v1/certificates?lot={lot}&limit=100")["items"]
        return [self.get(f"/api/v1/certificates/{c['id']}") for c in items]
