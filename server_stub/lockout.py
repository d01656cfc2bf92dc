"""Failed admin logins: a client, or the admin account as a whole, that fails too often
within a window is locked out for a while (429, even with the right password).

Counted in memory, per worker process: with ``--workers N`` an attacker gets N times the
budget, still a few dozen guesses per lockout period instead of thousands per second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from server_stub.errors import RateLimited


@dataclass
class _Record:
    failures: deque = field(default_factory=deque)  # monotonic times of recent failures
    locked_until: float = 0.0


class LoginGuard:
    """Per client address and per account failure counters with lockout."""

    def __init__(self, *, client_limit: int = 10, account_limit: int = 100, window_s: float = 600.0,
                 lockout_s: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client_limit = client_limit
        self.account_limit = account_limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _Record] = {}
        self._accounts: dict[str, _Record] = {}

    def check(self, client: str, account: str, *, noun: str = "admin passwords",
              account_name: str = "the admin account") -> None:
        """Raise ``RateLimited`` while the client or the account is locked out. The admin's
        Basic login and the people's login page share the per-address count."""
        now = self.clock()
        with self._lock:
            for what, rec in (("this address", self._clients.get(client)),
                              (account_name, self._accounts.get(account))):
                if rec is not None and rec.locked_until > now:
                    wait = rec.locked_until - now
                    raise RateLimited(f"too many wrong {noun} from {what}: "
                                      f"locked for {int(wait + 0.999)} more seconds", retry_after=wait)

    def failed(self, client: str, account: str) -> None:
        now = self.clock()
        with self._lock:
            self._count(self._clients, client, self.client_limit, now)
            self._count(self._accounts, account, self.account_limit, now)
            if len(self._clients) > 10000:  # a spray from many addresses must not grow memory forever
                self._clients = {k: r for k, r in self._clients.items()
                                 if r.locked_until > now or (r.failures and r.failures[-1] > now - self.window_s)}

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _count(self, table: dict[str, _Record], key: str, limit: int, now: float) -> None:
        rec = table.setdefault(key, _Record())
        rec.failures.append(now)
        while rec.failures and rec.failures[0] <= now - self.window_s:
            rec.failures.popleft()
        if len(rec.failures) >= limit:
            rec.locked_until = now + self.lockout_s
            rec.failures.clear()
