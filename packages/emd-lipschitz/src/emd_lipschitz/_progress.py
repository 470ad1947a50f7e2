"""Progress: a tqdm bar on a terminal, one plain line per ~10 % when stderr is piped."""

from __future__ import annotations

import sys


class _Lines:
    """Stand-in for a tqdm bar when stderr is not a terminal: one line per ~10 % (no carriage returns)."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n, self.next_tenth = max(1, int(total)), desc, 0, 1

    def update(self, k: int = 1) -> None:
        self.n += k
        while self.next_tenth <= 10 and self.n * 10 >= self.next_tenth * self.total:
            print(f"{self.desc}: {self.n}/{self.total}", file=sys.stderr, flush=True)
            self.next_tenth += 1

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, progress: bool | None):
    """``progress`` None: a bar on a terminal, nothing otherwise; True: a bar on a terminal, plain
    lines (one per ~10 %) when stderr is piped; False: nothing. Returns an object with
    ``update``/``close``, or None."""
    if progress is False:
        return None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False)
    return _Lines(total, desc) if progress else None
