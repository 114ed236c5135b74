"""W11, records: mp.Pool.map over 100,000 small objects (an int, a float, a str) returning an object, tasks/s;
and 10,000 sequential mp.Pool.apply with an object argument (1,000 under --quick), µs per call. Pickle carries them."""
import multiprocessing as mp
from dataclasses import dataclass

from common import emit, parse_args, rate, samples, timed, workers


@dataclass(frozen=True)
class Sample:
    id: int
    value: float
    name: str


@dataclass(frozen=True)
class Scored:
    id: int
    score: float
    label: str


def score(sample):
    return Scored(sample.id, sample.value * 2 + 1, sample.name.upper())


def make(i):
    return Sample(i, i * 0.5, f"item-{i}")


def calls(pool, items, count):
    for i in range(count):
        assert pool.apply(score, (items[i],)).id == i


def main():
    quick, reps = parse_args()
    items = [make(i) for i in range(100_000)]
    count = 1_000 if quick else 10_000
    with mp.Pool(workers()) as pool:
        assert pool.map(score, items[:3]) == [score(s) for s in items[:3]]
        emit("W11", "Map, records", "mp.Pool", "tasks/s",
             samples(reps, lambda: rate(len(items), lambda: pool.map(score, items))), "dataclasses, pickle")
        emit("W11", "sequential Apply, record", "mp.Pool", "µs",
             samples(reps, lambda: timed(lambda: calls(pool, items, count)) * 1e6 / count), "dataclasses, pickle")


if __name__ == "__main__":
    main()
