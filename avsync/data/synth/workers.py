"""Process parallelism for the generator: libespeak-ng is process-global and not thread-safe.

Workers are spawned (not forked), so no process inherits another's engine state; each
initialises its own libespeak-ng on first use.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from tqdm import tqdm


def parallel_map(function: Callable[[Any], Any], tasks: list, workers: int, progress: bool,
                 unit: str) -> Iterator[Any]:
    """`function` over `tasks` in `workers` spawned processes (in-process for 1), results in
    completion order, with a tqdm bar."""
    bar = tqdm(total=len(tasks), unit=unit, disable=not progress, dynamic_ncols=True)
    with bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                yield function(task)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(tasks))) as pool:
            for result in pool.imap_unordered(function, tasks):
                yield result
                bar.update()
