"""W9, lazy input: f(x) = x + 1 over an endless input (itertools.count) with mp.Pool.imap and imap_unordered.

The pool is started and warmed by a trivial map; then the consumer takes 1,000 results and keeps consuming
for 10 s (3 s under --quick), sampling once a second the parent's RSS (VmRSS of /proc/self/status, the
working set of the C# side) and how many inputs the pool has pulled beyond the results consumed; then it
pauses, holding the iterator without asking for more, for as long, sampled in the same way. Figures, as the
C# side's (MiB are 2^20 bytes): RSS growth from before imap to the 1,000th result; while consuming, RSS growth
over the baseline at the 1,000th result and inputs pulled ahead, median (min-max) of the one-second samples,
and the least-squares slope of the RSS over the samples of the second half of that period, in MiB/s; while
paused, that slope over all the pause's samples, and inputs pulled ahead. One measurement per implementation,
no warm-up run and no --reps: the first 1,000 results are the warm-up.

mp.Pool pulls its input as fast as its workers take tasks, whether or not the consumer takes results, and
buffers the results in the parent: while paused it grows without bound. So a run stops early once the RSS has
grown by 2 GiB, and the pool is always terminated. joblib 1.2 has no lazy form (Parallel returns a list once
every input is done; return_as="generator" came in 1.3; loky's executor.map submits its whole input first):
a note says so.
"""
import inspect
import itertools
import multiprocessing as mp
import time

from common import emit, note, parse_args, try_import_joblib, workers

BASELINE = 1_000
CAP = 2 << 30
MIB = 1 << 20


def increment(x):
    return x + 1


def rss():
    """The parent's resident set, in bytes (VmRSS of /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Counted:
    """itertools.count() that counts what the pool has pulled."""

    def __init__(self):
        self.pulled = 0

    def __iter__(self):
        for i in itertools.count():
            self.pulled += 1
            yield i


class Run:
    """One implementation's run: the inputs pulled and results consumed, the RSS it started from, and the order."""

    def __init__(self, start, ordered):
        self.source = Counted()
        self.consumed = 0
        self.start = start
        self.ordered = ordered
        self.capped = None  # the phase and second at which the RSS passed start + CAP

    def sample(self, reference, now, resident):
        """(seconds since the reference (time, RSS), RSS growth over it in MiB, inputs pulled ahead)."""
        return now - reference[0], (resident - reference[1]) / MIB, self.source.pulled - self.consumed

    def over_cap(self, phase, seconds, resident):
        if resident - self.start > CAP:
            self.capped = f"{phase} {seconds:.1f} s"
        return self.capped is not None


def consume(run, results, duration):
    """Takes 1,000 results, then consumes for duration s, sampling each second; returns (RSS at result 1,000, samples)."""
    samples = []
    for result in results:
        if run.ordered and result != run.consumed + 1:
            raise AssertionError(f"result {run.consumed} was {result}, not {run.consumed + 1}")
        run.consumed += 1
        if run.consumed == BASELINE:
            baseline = (time.perf_counter(), rss())
            next_sample = baseline[0] + 1
            next_check = baseline[0] + 0.1
        elif run.consumed > BASELINE and (now := time.perf_counter()) >= next_check:
            next_check = now + 0.1
            resident = rss()
            if now >= next_sample or run.over_cap("consuming", now - baseline[0], resident):
                samples.append(run.sample(baseline, now, resident))
                next_sample += 1
                if run.capped or now - baseline[0] >= duration:
                    break
    return baseline[1], samples


def pause(run, duration):
    """Takes nothing for duration s, sampling each second; returns the samples."""
    reference = (time.perf_counter(), rss())
    samples = []
    for second in range(1, duration + 1):
        while (now := time.perf_counter()) < reference[0] + second:
            time.sleep(min(0.1, reference[0] + second - now))
            resident = rss()
            if run.over_cap("paused", time.perf_counter() - reference[0], resident):
                samples.append(run.sample(reference, time.perf_counter(), resident))
                return samples
        samples.append(run.sample(reference, time.perf_counter(), rss()))
    return samples


def slope(points):
    """The least-squares slope of [(x, y)]; at least two distinct x."""
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def emit_rate(variant, impl, samples):
    """The RSS slope over samples (seconds, MiB, ...); over the reference and the last sample when fewer than 2."""
    points = [(seconds, growth) for seconds, growth, _ in samples]
    if len(points) >= 2:
        emit("W9", variant, impl, "MiB/s", [slope(points)], f"VmRSS; least-squares slope over {len(points)} samples")
    elif points:
        seconds, growth = points[-1]
        emit("W9", variant, impl, "MiB/s", [growth / seconds], f"VmRSS; growth over the first {seconds:.1f} s (stopped early)")


def series(samples):
    return ", ".join(f"{seconds:.0f} s {growth:+.1f} MiB" for seconds, growth, _ in samples)


def measure(impl, method, duration):
    pool = mp.Pool(workers())
    try:
        assert pool.map(increment, range(16)) == list(range(1, 17))
        run = Run(rss(), ordered=method == "imap")
        results = getattr(pool, method)(increment, iter(run.source))
        at_baseline, consuming = consume(run, results, duration)
        paused = [] if run.capped else pause(run, duration)
    finally:
        pool.terminate()
        pool.join()

    note(f"{impl}: {run.consumed:,} results consumed in {duration} s after the first {BASELINE:,}, then paused for "
         f"{duration} s; {len(consuming)} + {len(paused)} one-second samples"
         + (f"; stopped early ({run.capped}): RSS grew by more than {CAP // MIB:,} MiB" if run.capped else ""))
    note(f"{impl}: RSS over the baseline at the 1,000th result: {series(consuming)}"
         + (f"; paused, over the pause's start: {series(paused)}" if paused else ""))
    emit("W9", "working set growth to result 1,000", impl, "MiB", [(at_baseline - run.start) / MIB], "VmRSS")
    if consuming:
        emit("W9", "working set growth", impl, "MiB", [growth for _, growth, _ in consuming], "VmRSS")
        emit_rate("working set growth rate, 2nd half", impl, [s for s in consuming if s[0] >= duration / 2] or consuming)
        emit("W9", "inputs pulled beyond consumed", impl, "items", [ahead for _, _, ahead in consuming])
    if paused:
        emit_rate("paused: working set growth rate", impl, paused)
        emit("W9", "paused: inputs beyond consumed", impl, "items", [ahead for _, _, ahead in paused])


def main():
    quick, _ = parse_args()
    duration = 3 if quick else 10
    for method in ("imap", "imap_unordered"):
        measure(f"mp.Pool {method}", method, duration)

    joblib = try_import_joblib()
    if joblib and "return_as" in inspect.signature(joblib.Parallel).parameters:
        note(f"joblib {joblib.__version__}: Parallel has return_as='generator', not measured by this script")
    elif joblib:
        note(f"joblib {joblib.__version__}: no lazy form, not measured (Parallel returns a list once every input is done; "
             "return_as='generator' came in joblib 1.3; loky's executor.map submits its whole input first)")


if __name__ == "__main__":
    main()
