"""Worker-process pools whose workers die with their parent.

A ProcessPoolExecutor's workers outlive a parent that is killed (SIGTERM from `kill`, SIGKILL, the
OOM killer): they go on with the tasks already queued to them, for minutes of both cores, and every
timing taken meanwhile is wrong (after an eval was stopped with `pkill`, its two workers ran on
unseen for 16 minutes). Each worker watches its parent's sentinel and exits the moment it is gone.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context, parent_process
from multiprocessing.connection import wait


def _exit_with_parent() -> None:
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])  # readable once the parent has exited, however it ended
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def process_pool(workers: int, method: str | None = "spawn") -> ProcessPoolExecutor:
    """A pool of `workers` processes started by `method` (None: the platform's default) that exit
    when this process does."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method), initializer=_exit_with_parent)
