"""Time onnxruntime on an ONNX face embedder, measured as auraface-bench measures the engine.

Reports session creation time (median of --load-runs creations), then per batch size and
intra-op thread count the wall-clock and CPU milliseconds per face over --runs timed runs after
--warmup untimed ones, and the process's peak RSS. Sessions run with inter_op_num_threads 1
and sequential execution, so intra_op_num_threads is the only parallelism. The input is a
deterministic uniform tensor in [-1, 1], the range of (v - 127.5) / 127.5.

Peak RSS never goes down within a process: to measure one configuration's peak, run this with
one batch size and one thread count. Prints a table and, with --json FILE, writes every figure
with the same keys as auraface-bench's JSON.

Usage: bench_onnxruntime.py --model MODEL.onnx [--batch-sizes 1,8] [--threads 1,2] [--runs 10]
                            [--warmup 2] [--load-runs 3] [--load-only] [--seed N] [--json FILE]
"""

import argparse
import datetime
import json
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def positive_integers(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid list '{text}', expected integers such as 1,8")
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"invalid list '{text}', expected integers >= 1")
    return values


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the ONNX file to run")
    parser.add_argument("--batch-sizes", type=positive_integers, default=[1, 8])
    parser.add_argument("--threads", type=positive_integers, default=[1, 2],
                        help="intra_op_num_threads values, comma-separated")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    parser.add_argument("--load-runs", type=int, default=3, help="timed session creations")
    parser.add_argument("--load-only", action="store_true", help="time session creation only")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the random input")
    parser.add_argument("--json", help="also write all figures to this file as JSON")
    arguments = parser.parse_args(argv)
    if arguments.runs < 1 or arguments.load_runs < 1 or arguments.warmup < 0:
        parser.error("--runs and --load-runs must be >= 1, --warmup >= 0")
    return arguments


def summary(samples):
    """Median, min, max and quartiles in ms, as auraface-bench's TimingSummary computes them."""
    values = np.asarray(samples, dtype=np.float64)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "count": int(values.size),
        "median": float(median),
        "min": float(values.min()),
        "max": float(values.max()),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
    }


def memory_report():
    """Peak and current RSS in MiB: ru_maxrss (KiB on Linux) and VmHWM, VmRSS of /proc/self/status."""
    report = {"maxRSSMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    report[f"{name[:2].lower()}{name[2:]}MiB"] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return report


def cpu_milliseconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def make_session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def time_session_creation(model, threads, count):
    samples = []
    session = None
    for _ in range(count):
        # Drop the previous session first so that at most one copy of the weights is resident.
        session = None
        start = time.perf_counter()
        session = make_session(model, threads)
        samples.append((time.perf_counter() - start) * 1000)
    return session, {"ms": summary(samples), "samples": samples}


def run_configuration(session, batch_size, threads, arguments):
    first_input = session.get_inputs()[0]
    channels, height, width = first_input.shape[1:]
    rng = np.random.default_rng(arguments.seed)
    x = rng.uniform(-1, 1, (batch_size, channels, height, width)).astype(np.float32)
    feed = {first_input.name: x}

    for _ in range(arguments.warmup):
        session.run(None, feed)
    wall, cpu = [], []
    for _ in range(arguments.runs):
        cpu_start = cpu_milliseconds()
        start = time.perf_counter()
        (output,) = session.run(None, feed)
        wall.append((time.perf_counter() - start) * 1000 / batch_size)
        cpu.append((cpu_milliseconds() - cpu_start) / batch_size)
        if output.shape[0] != batch_size or not np.isfinite(output).all():
            sys.exit(f"bench_onnxruntime.py: output of shape {output.shape} is not "
                     f"{batch_size} finite embeddings")
    return {
        "batchSize": batch_size,
        "threads": threads,
        "warmup": arguments.warmup,
        "msPerFace": summary(wall),
        "cpuMsPerFace": summary(cpu),
        "msPerFaceSamples": wall,
        "memoryAfter": memory_report(),
    }


def print_table(report):
    print(f"model: {report['model']} ({report['modelBytes'] // 1_000_000} MB)")
    print(f"onnxruntime {report['onnxruntimeVersion']}, numpy {report['numpyVersion']}")
    load = report["load"]["ms"]
    print(f"session creation: median {load['median']:.1f} ms over {load['count']} "
          f"(min {load['min']:.1f}, max {load['max']:.1f})")
    print(f"RSS after session creation: {report['memoryAfterLoad'].get('vmRSSMiB', float('nan')):.1f} MiB")
    if not report["configurations"]:
        return
    print()
    print("batch  threads  runs  ms/face median     min     max     IQR  cpu ms/face  peak RSS MiB")
    for result in report["configurations"]:
        timing = result["msPerFace"]
        print(f"{result['batchSize']:>5}  {result['threads']:>7}  {timing['count']:>4}"
              f"  {timing['median']:>14.1f}  {timing['min']:>6.1f}  {timing['max']:>6.1f}  {timing['iqr']:>6.1f}"
              f"  {result['cpuMsPerFace']['median']:>11.1f}  {result['memoryAfter']['maxRSSMiB']:>12.1f}")


def main(argv):
    arguments = parse_arguments(argv)
    session, load = time_session_creation(arguments.model, arguments.threads[0], arguments.load_runs)
    memory_after_load = memory_report()

    configurations = []
    if not arguments.load_only:
        for threads in arguments.threads:
            if threads != arguments.threads[0]:
                session = None
                session = make_session(arguments.model, threads)
            for batch_size in arguments.batch_sizes:
                configurations.append(run_configuration(session, batch_size, threads, arguments))
        configurations.sort(key=lambda result: (result["batchSize"], result["threads"]))

    report = {
        "tool": "bench_onnxruntime.py",
        "command": [sys.executable] + sys.argv,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": arguments.model,
        "modelBytes": os.path.getsize(arguments.model),
        "onnxruntimeVersion": ort.__version__,
        "numpyVersion": np.__version__,
        "seed": arguments.seed,
        "load": load,
        "memoryAfterLoad": memory_after_load,
        "configurations": configurations,
        "memoryPeak": memory_report(),
    }
    print_table(report)
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(report, file, indent=2, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
