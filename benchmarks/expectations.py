"""Benchmark: the cost of 1 against 20 expectations over the same rows (one pass either way).

.venv/bin/python benchmarks/expectations.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.quality.expectations import Action, Expectation, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    expectations = [Expectation(f"amount_over_{i}", f"amount > {i * 10}", Action.WARN) for i in range(20)]
    with spark_session(EngineSettings()) as spark:
        path = "benchmarks/.work/expectations"
        spark.range(args.rows).selectExpr(
            "id", "id % 1000 AS amount", "concat('user', id, '@x.com') AS email"
        ).write.format("delta").mode("overwrite").save(path)
        frame = spark.read.format("delta").load(path)
        timings = {}
        for count in (1, 20):
            timings[count] = best(
                lambda n=count: evaluate(frame, expectations[:n], key_columns=("id",)), args.repeats
            )
            print(
                f"{count:2} expectation(s), one pass:        {timings[count]:.3f} s (best of {args.repeats})"
            )
        separate = best(
            lambda: [evaluate(frame, [e], key_columns=("id",)) for e in expectations], args.repeats
        )
        print(f"20 expectations, one query each: {separate:.3f} s")
        print(
            f"ratio 20 / 1 in one pass: {timings[20] / timings[1]:.2f}; one query each / one pass: "
            f"{separate / timings[20]:.2f}"
        )


def best(work, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return min(runs)


if __name__ == "__main__":
    main()
