"""A small pool of threads for CPU-heavy calls (NLU parse, KB search and rebuilds, scrypt), so that they
never run on the event loop and stall every other connection of the process.

Threads, not processes: the heavy parts release the GIL (numpy and scikit-learn's vector maths, hashlib's
scrypt), so threads run them in parallel; and the trained model and KB index are shared by every thread
instead of being pickled into, and copied by, each worker process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class CpuPool:
    """``await pool.run(fn, *args, **kwargs)`` runs ``fn`` in one of ``workers`` threads."""

    def __init__(self, workers: int = 4) -> None:
        if workers < 1:
            raise ValueError(f"a CpuPool needs at least one worker, got {workers}")
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="triage-cpu")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """The result of ``fn(*args, **kwargs)``, computed off the event loop."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await loop.run_in_executor(self._executor, call)

    def shutdown(self, wait: bool = True) -> None:
        """Finish (``wait``) or drop the queued calls and stop the threads."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


async def run_cpu(cpu: CpuPool | None, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``cpu.run(...)``, or ``asyncio.to_thread`` where no pool was given (tools, tests)."""
    if cpu is not None:
        return await cpu.run(fn, *args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)
