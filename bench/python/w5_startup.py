"""W5, start-up of a 2-worker pool, in ms: construct to the first result of a trivial task; and construct +
map 2 trivial tasks + close + join. mp.Pool with the spawn and fork start methods, and loky (joblib's
executor) when joblib is installed.
"""
import multiprocessing as mp

from common import emit, parse_args, samples, timed, try_import_joblib

WORKERS = 2


def increment(x):
    return x + 1


def mp_first_result(context):
    pool = context.Pool(WORKERS)
    pool.apply(increment, (1,))
    return pool


def mp_map_close_join(context):
    pool = context.Pool(WORKERS)
    pool.map(increment, [0, 1])
    pool.close()
    pool.join()


def first_result_ms(start):
    """ms from start() to its first result; the pool is torn down after the clock stops."""
    holder = []
    ms = timed(lambda: holder.append(start())) * 1e3
    holder[0].terminate() if hasattr(holder[0], "terminate") else holder[0].shutdown(wait=True)
    return ms


def main():
    quick, reps = parse_args()
    for method in ("spawn", "fork"):
        context = mp.get_context(method)
        emit("W5", "first result", f"mp.Pool {method}", "ms", samples(reps, lambda: first_result_ms(lambda: mp_first_result(context))))
        emit("W5", "map 2 + close + join", f"mp.Pool {method}", "ms", samples(reps, lambda: timed(lambda: mp_map_close_join(context)) * 1e3))

    joblib = try_import_joblib()
    if joblib:
        from joblib.externals.loky.process_executor import ProcessPoolExecutor

        def loky_first_result():
            executor = ProcessPoolExecutor(max_workers=WORKERS)
            executor.submit(increment, 1).result()
            return executor

        def loky_map_shutdown():
            executor = ProcessPoolExecutor(max_workers=WORKERS)
            list(executor.map(increment, [0, 1]))
            executor.shutdown(wait=True)

        emit("W5", "first result", "loky", "ms", samples(reps, lambda: first_result_ms(loky_first_result)))
        emit("W5", "map 2 + close + join", "loky", "ms", samples(reps, lambda: timed(loky_map_shutdown) * 1e3),
             "map 2 + shutdown(wait=True)")


if __name__ == "__main__":
    main()
