"""W4, payload: 200 arguments of 1 MiB (50 under --quick), bytes and array('d'), through mp.Pool.map; the
function returns the length (one way) or the argument (echo). MB/s (10^6 bytes) of payload moved across
the process boundary: an echo moves each argument twice and counts both.
"""
import multiprocessing as mp
from array import array

from common import emit, parse_args, samples, timed, workers

SIZE = 1 << 20


def length(value):
    return len(value)


def echo(value):
    return value


def main():
    quick, reps = parse_args()
    count = 50 if quick else 200
    payload_bytes = bytes(i * 31 & 0xFF for i in range(SIZE))
    payload_doubles = array("d", (i * 0.5 for i in range(SIZE // 8)))
    # Distinct objects: pickle memoizes repeated references, so [payload] * count would ship one copy per chunk.
    payloads = {
        "byte[]": lambda: [bytes(bytearray(payload_bytes)) for _ in range(count)],
        "double[]": lambda: [array("d", payload_doubles) for _ in range(count)],
    }
    with mp.Pool(workers()) as pool:
        for name, make in payloads.items():
            items = make()
            emit("W4", f"{name} one way", "mp.Pool", "MB/s",
                 samples(reps, lambda: SIZE * count / 1e6 / timed(lambda: pool.map(length, items))))
            emit("W4", f"{name} echo", "mp.Pool", "MB/s",
                 samples(reps, lambda: 2 * SIZE * count / 1e6 / timed(lambda: pool.map(echo, items))))


if __name__ == "__main__":
    main()
