"""The leading worker keeps the stored origin-risk population fresh: whenever the ledger has changed and the
stored one is :data:`~traceability.services.risk.POPULATION_TTL_S` old (or none is stored), it starts
``trace risk-learn --background`` as a process of its own and waits for it beside anchoring.

A process, not a thread: learning reads every risk fact of the ledger (hundreds of megabytes at a million
events) and loads scikit-learn; in a process of its own that memory is given back when it ends, and neither
the worker nor a server ever holds it. One runs at a time; one that fails is tried again after the TTL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from traceability.services.risk import POPULATION_TTL_S

log = logging.getLogger(__name__)

CHECK_S: Final = 5.0
"""How often the worker asks whether the population is due (one primary-key query and the ledger version)."""
LEARN = (sys.executable, "-m", "traceability.cli", "risk-learn", "--background", "--json")


class RiskLearner:
    """Starts and watches ``trace risk-learn``; :meth:`poll` does one step, :meth:`start` polls in a thread
    until :meth:`stop`. ``due(ttl_s)`` says whether the stored population should be learned again
    (:func:`~traceability.services.risk.population_due`). ``env`` is laid over this process's environment
    for the learning process: the worker names its own database and files there, whatever its environment
    says."""

    def __init__(
        self,
        due: Callable[[float], bool],
        *,
        ttl_s: float = POPULATION_TTL_S,
        check_s: float = CHECK_S,
        command: Sequence[str] = LEARN,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._due = due
        self._ttl_s = ttl_s
        self._check_s = check_s
        self._command = list(command)
        self._env = {**os.environ, **(env or {})}
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._failed_at: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.learned = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        return self._process is not None

    def poll(self) -> None:
        """Collect a finished learning; start one when the population is due and none runs."""
        if self._process is not None:
            code = self._process.poll()
            if code is None:
                return
            seconds = self._clock() - self._started
            self._process = None
            if code == 0:
                self.learned += 1
                self._failed_at = None
                log.info("origin-risk population learned in %.1f s", seconds)
            else:
                self.failed += 1
                self._failed_at = self._clock()
                log.error(
                    "learning the origin-risk population failed (exit %s); again in %.0f s", code, self._ttl_s
                )
        if self._failed_at is not None and self._clock() - self._failed_at < self._ttl_s:
            return
        if self._due(self._ttl_s):
            self._started = self._clock()
            self._process = subprocess.Popen(
                self._command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=self._env
            )

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception:  # a database hiccup: the next check tries again
                log.exception("checking the origin-risk population failed")
            self._stopping.wait(self._check_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="risk-learner", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop polling and end a learning under way (it stores nothing unless it finished)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
