"""Bronze stages a batch's files on several threads, in order, holding a bounded number of results."""

from __future__ import annotations

import random
import threading
import time

import pytest

from lakehouse_dagster.ingest.autoloader import in_order_parallel


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_results_come_in_the_items_order_with_a_bounded_number_in_flight(threads: int) -> None:
    items = list(range(40))
    rng = random.Random(threads)
    delays = {item: rng.random() / 500 for item in items}  # later items often finish first
    lock = threading.Lock()
    started: list[int] = []
    taken: list[int] = []
    most_ahead = 0

    def work(item: int) -> int:
        nonlocal most_ahead
        with lock:
            started.append(item)
            most_ahead = max(most_ahead, len(started) - len(taken))
        time.sleep(delays[item])
        return item * item

    for result in in_order_parallel(work, items, threads):
        taken.append(result)

    assert taken == [item * item for item in items]
    assert most_ahead <= max(threads, 1) + 1  # the one being taken, and those started after it


def test_an_error_surfaces_at_its_item() -> None:
    def work(item: int) -> int:
        if item == 5:
            raise ValueError("item 5 is unreadable")
        return item

    results = in_order_parallel(work, list(range(10)), 2)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="item 5"):
        next(results)
