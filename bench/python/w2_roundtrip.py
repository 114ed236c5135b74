"""W2, round trip: 10,000 sequential mp.Pool.apply calls (1,000 under --quick); µs per call."""
import multiprocessing as mp

from common import emit, parse_args, samples, timed, workers


def increment(x):
    return x + 1


def calls(pool, count):
    for i in range(count):
        pool.apply(increment, (i,))


def main():
    quick, reps = parse_args()
    count = 1_000 if quick else 10_000
    with mp.Pool(workers()) as pool:
        emit("W2", "sequential Apply", "mp.Pool", "µs",
             samples(reps, lambda: timed(lambda: calls(pool, count)) * 1e6 / count))


if __name__ == "__main__":
    main()
