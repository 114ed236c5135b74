"""W3, CPU-bound: mc_pi(seed) for seeds 1..64 (1..16 under --quick), 200,000 samples each (about 50 ms in
CPython), serial against mp.Pool.map and joblib.Parallel; speed-up over serial and efficiency (speed-up /
workers, in %). Serial and parallel runs alternate within each repetition, and each ratio is taken within it.
"""
import multiprocessing as mp

from common import emit, note, parse_args, samples, timed, try_import_joblib, workers

SAMPLES = 200_000
MASK = (1 << 64) - 1


def mc_pi(seed, samples=SAMPLES):
    """shared/WORKLOADS.md: a 64-bit LCG from seed; count the points with x*x + y*y <= 1."""
    s = seed
    inside = 0
    for _ in range(samples):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        x = (s >> 11) * 2.0**-53
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        y = (s >> 11) * 2.0**-53
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def main():
    quick, reps = parse_args()
    assert mc_pi(1) == 156_769, "mc_pi check value for seed 1"
    seeds = list(range(1, (16 if quick else 64) + 1))
    n = workers()
    joblib = try_import_joblib()
    note(f"Python: {len(seeds)} tasks of {SAMPLES:,} samples")

    def serial():
        return [mc_pi(s) for s in seeds]

    with mp.Pool(n) as pool:
        if joblib:
            with joblib.Parallel(n_jobs=n) as parallel:
                runs = samples(reps, lambda: (timed(serial), timed(lambda: pool.map(mc_pi, seeds)),
                                              timed(lambda: parallel(joblib.delayed(mc_pi)(s) for s in seeds))))
        else:
            runs = samples(reps, lambda: (timed(serial), timed(lambda: pool.map(mc_pi, seeds)), None))

    emit("W3", "speed-up vs serial", "mp.Pool", "×", [s / p for s, p, _ in runs])
    emit("W3", "efficiency", "mp.Pool", "%", [100 * s / p / n for s, p, _ in runs])
    if joblib:
        emit("W3", "speed-up vs serial", "joblib", "×", [s / j for s, _, j in runs])
        emit("W3", "efficiency", "joblib", "%", [100 * s / j / n for s, _, j in runs])


if __name__ == "__main__":
    main()
