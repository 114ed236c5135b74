"""W1, tiny tasks: f(x) = x + 1 over 100,000 ints; tasks/s.

mp.Pool.map with its default chunks and with chunksize=1; joblib.Parallel with its default (auto) batching.
Under --quick, chunk size 1 and joblib run over 10,000 items. Each repetition repeats the map for at least
0.2 s and reports the rate over all of them.
"""
import multiprocessing as mp

from common import emit, note, parse_args, rate, samples, try_import_joblib, workers


def increment(x):
    return x + 1


def main():
    quick, reps = parse_args()
    items = list(range(100_000))
    fewer = list(range(10_000 if quick else 100_000))
    if quick:
        note(f"Python: chunk size 1 and joblib over {len(fewer):,} items (--quick)")

    with mp.Pool(workers()) as pool:
        assert pool.map(increment, items[:10]) == list(range(1, 11))
        emit("W1", "default chunks", "mp.Pool", "tasks/s",
             samples(reps, lambda: rate(len(items), lambda: pool.map(increment, items))))
        emit("W1", "chunk size 1", "mp.Pool", "tasks/s",
             samples(reps, lambda: rate(len(fewer), lambda: pool.map(increment, fewer, chunksize=1))))

    joblib = try_import_joblib()
    if joblib:
        with joblib.Parallel(n_jobs=workers()) as parallel:
            run = lambda: parallel(joblib.delayed(increment)(x) for x in fewer)
            emit("W1", "default chunks", "joblib", "tasks/s", samples(reps, lambda: rate(len(fewer), run)),
                 "batch_size='auto'")


if __name__ == "__main__":
    main()
