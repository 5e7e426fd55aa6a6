"""A progress line for long local stages (documents, MB, rate, ETA): only on a terminal, silent otherwise."""
from __future__ import annotations

import os
import sys
import time


class Progress:
    """Redrawn on stderr at most twice a second; does nothing when stderr is not a TTY (CI, logs, pipes)."""

    def __init__(self, label: str, total_bytes: int) -> None:
        self.label, self.total = label, max(total_bytes, 1)
        self.enabled = os.isatty(2)
        self.start = self.last = time.monotonic()
        self.done_bytes = self.docs = 0

    def update(self, docs: int = 0, nbytes: int = 0) -> None:
        self.docs += docs
        self.done_bytes += nbytes
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.5:
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done_bytes / elapsed / 1e6 if elapsed else 0.0
        left = (self.total - self.done_bytes) / (rate * 1e6) if rate else float("nan")
        sys.stderr.write(f"\r{self.label}: {self.docs:,} docs, {self.done_bytes / 1e6:,.1f}/{self.total / 1e6:,.1f} MB, "
                         f"{rate:.2f} MB/s, ETA {left:,.0f} s   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.docs:
            sys.stderr.write("\n")
