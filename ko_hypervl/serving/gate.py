"""A concurrency gate for the model: at most ``concurrency`` generations at once, a bounded waiting line.

A CPU runs one generation at full speed; two at once each run at half speed or worse (the cores are
shared), so the demo and the API let one request generate and make the rest wait their turn. The line
is bounded (``max_waiting``) and so is the wait (``wait_timeout``): a request that cannot be served
soon is refused at once with :class:`ServerBusy` (HTTP 503 / a message in the UI) instead of piling up
memory and timing out somewhere nobody sees.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class ServerBusy(RuntimeError):
    """The request was refused because the server is at capacity; retrying later can succeed."""


class ConcurrencyGate:
    def __init__(self, concurrency: int = 1, max_waiting: int = 32, wait_timeout: float = 120.0):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, got {max_waiting}")
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    def acquire(self) -> None:
        """Take a slot, waiting at most ``wait_timeout`` seconds; raises :class:`ServerBusy` if none comes."""
        if self._slots.acquire(blocking=False):
            with self._lock:
                self._running += 1
            return
        with self._lock:
            if self._waiting >= self.max_waiting:
                self.refused += 1
                raise ServerBusy(f"the server is busy: {self._waiting} requests are already waiting "
                                 f"(limit {self.max_waiting}); try again shortly (서버가 바쁩니다. 잠시 후 다시 시도하세요)")
            self._waiting += 1
        try:
            got = self._slots.acquire(timeout=self.wait_timeout)
        finally:
            with self._lock:
                self._waiting -= 1
        if not got:
            with self._lock:
                self.refused += 1
            raise ServerBusy(f"the server is busy: no generation slot freed up within {self.wait_timeout:g} s; "
                             "try again shortly (서버가 바쁩니다. 잠시 후 다시 시도하세요)")
        with self._lock:
            self._running += 1

    def release(self) -> None:
        with self._lock:
            self._running -= 1
        self._slots.release()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def stats(self) -> dict:
        return {"concurrency": self.concurrency, "running": self._running, "waiting": self._waiting,
                "max_waiting": self.max_waiting, "refused": self.refused}
