"""Shared by the Python references of Pool.Bench: arguments, the repetition scheme, and the output.

Each script prints one JSON object per figure on stdout, with the same scheme as the C# bench: one
warm-up run that is thrown away, then --reps measured runs, summarized as median, min and max. A line
{"note": "..."} is a remark (a skipped reference). Everything else goes to stderr.
"""
import json
import os
import statistics
import sys
import time


def parse_args():
    """(quick, reps) from the command line: --quick, --reps N (default 5)."""
    quick = "--quick" in sys.argv
    reps = 5
    if "--reps" in sys.argv:
        reps = int(sys.argv[sys.argv.index("--reps") + 1])
    return quick, reps


def workers():
    """One worker per core, as the C# pools."""
    return os.cpu_count() or 1


def samples(reps, run):
    """One warm-up call of run(), then reps calls; returns what the measured calls returned."""
    run()
    return [run() for _ in range(reps)]


def timed(action):
    """Wall seconds of action()."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def rate(count, action, at_least=0.2):
    """Items per second of action() over count items, repeating it until at_least seconds have passed (the
    same rule as the C# bench's Measure.Rate): one run of a few milliseconds would measure wake-up jitter."""
    runs = 0
    start = time.perf_counter()
    while True:
        action()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= at_least:
            return count * runs / elapsed


def emit(workload, variant, impl, unit, values, note=None):
    figure = {
        "workload": workload,
        "variant": variant,
        "impl": impl,
        "unit": unit,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "reps": len(values),
    }
    if note:
        figure["note"] = note
    print(json.dumps(figure), flush=True)


def note(text):
    print(json.dumps({"note": text}), flush=True)


def try_import_joblib():
    """joblib, or None after a note saying its figures are skipped."""
    try:
        import joblib
        return joblib
    except ImportError:
        note(f"joblib is not installed for {sys.executable}: joblib figures skipped")
        return None
