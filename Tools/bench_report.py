"""Combine the JSON files of one Tools/benchmark.sh run into a ratio table and a PNG chart.

Reads from RUN_DIR the files benchmark.sh writes:
  engine-load.json, ort-load.json            load time and session creation time
  engine-b{B}-t{T}.json, ort-b{B}-t{T}.json  one process per batch size B and thread count T
  engine-b1-t{T}-prescott.json               (optional) the engine with OPENBLAS_CORETYPE=Prescott
  engine-b1-t{T}-plain.json                  (optional) the engine with --convolution plain
  command.txt, loadavg-start.txt, loadavg-end.txt   (optional) context for the header

Prints the tables as Markdown (the form BENCHMARKS.md quotes), writes them to --markdown FILE,
and draws the chart to --chart FILE.png. The chart needs no plotting package: it is drawn into a
numpy array with a built-in 5x7 pixel font and encoded as PNG with zlib.

Usage: bench_report.py RUN_DIR [--markdown FILE] [--chart FILE.png]
"""

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np


def load_json(path):
    with open(path) as file:
        return json.load(file)


def read_text(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model():
    """Return the first CPU's model name with its family and model numbers from /proc/cpuinfo.

    Virtual machines often shorten the name (such as "AMD EPYC"), and the numbers still
    identify the generation.
    """
    fields = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def machine_description():
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu_model(),
        "logicalCPUs": os.cpu_count(),
        "availableCPUs": len(os.sched_getaffinity(0)),
        "nproc": nproc,
        "kernel": platform.release(),
    }


def configuration(report):
    """Return the only configuration of a report, exiting if the process ran several."""
    configurations = report["configurations"]
    if len(configurations) != 1:
        sys.exit(f"bench_report.py: {report['command']} ran {len(configurations)} configurations, "
                 "expected 1 (peak RSS is only meaningful for a process that ran one)")
    return configurations[0]


def peak_rss(report):
    memory = report["memoryPeak"]
    return memory.get("vmHWMMiB", memory["maxRSSMiB"])


def spread(summary):
    """Return the IQR as a percentage of the median, a measure of how noisy the runs were."""
    return 100 * summary["iqr"] / summary["median"]


def collect(run_dir):
    run_dir = Path(run_dir)
    rows = []
    for engine_path in sorted(run_dir.glob("engine-b*-t*.json")):
        if engine_path.stem.count("-") != 2:
            continue  # engine-b1-t2-prescott.json and other variants of a configuration
        ort_path = run_dir / engine_path.name.replace("engine-", "ort-")
        if not ort_path.exists():
            sys.exit(f"bench_report.py: {engine_path} has no onnxruntime counterpart {ort_path}")
        engine, ort = load_json(engine_path), load_json(ort_path)
        rows.append((configuration(engine), configuration(ort), engine, ort))
    if not rows:
        sys.exit(f"bench_report.py: no engine-b*-t*.json files in {run_dir}")
    rows.sort(key=lambda row: (row[0]["batchSize"], row[0]["threads"]))
    return rows


def markdown_tables(run_dir):
    run_dir = Path(run_dir)
    rows = collect(run_dir)
    engine_load = load_json(run_dir / "engine-load.json")
    ort_load = load_json(run_dir / "ort-load.json")
    blas = rows[0][2]["blas"]
    machine = machine_description()
    lines = []

    lines.append(f"- Date: {rows[0][2]['date']}")
    lines.append(f"- Machine: {machine['cpu']}, {machine['availableCPUs']} CPUs available to the "
                 f"process (`nproc` {machine['nproc']}, {machine['logicalCPUs']} logical CPUs), "
                 f"Linux {machine['kernel']}")
    load_start, load_end = read_text(run_dir / "loadavg-start.txt"), read_text(run_dir / "loadavg-end.txt")
    if load_start and load_end:
        lines.append(f"- Load average (1, 5, 15 min) at start: {' '.join(load_start.split()[:3])}, "
                     f"at end: {' '.join(load_end.split()[:3])}")
    lines.append(f"- OpenBLAS: `{blas['config']}`, core `{blas['coreName']}` "
                 f"({blas['coreTypeSource']}), {blas['libraryPath']}")
    lines.append(f"- onnxruntime {rows[0][3]['onnxruntimeVersion']} (CPUExecutionProvider, "
                 "inter_op_num_threads 1, sequential execution)")
    lines.append(f"- Model: {Path(rows[0][3]['model']).name} ({rows[0][3]['modelBytes'] / 1e6:.1f} MB), "
                 f"{engine_load['architecture']}")
    revision = read_text(run_dir / "revision.txt")
    if revision:
        lines.append(f"- Source: {revision}")
    command = read_text(run_dir / "command.txt")
    if command:
        lines.append(f"- Command: `{command}`")
    runs = sorted({f"batch {e['batchSize']}: {e['msPerFace']['count']}" for e, _, _, _ in rows})
    lines.append(f"- Timed runs per configuration ({', '.join(runs)}), after "
                 f"{rows[0][0]['warmup']} warm-up runs; one process per configuration")
    lines.append("")

    lines.append("Milliseconds per face: median over the timed runs, then min and the interquartile "
                 "range as a percentage of the median. CPU is the process's user + system time per face "
                 "(all threads): well below threads x median, it shows the process waited for a CPU.")
    lines.append("")
    lines.append("| Batch | Threads | AuraFace median | min | IQR | CPU | onnxruntime median | min | IQR | CPU "
                 "| AuraFace / onnxruntime, medians | mins |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for engine, ort, _, _ in rows:
        cells = [str(engine["batchSize"]), str(engine["threads"])]
        for result in (engine, ort):
            timing = result["msPerFace"]
            cells += [f"{timing['median']:.1f}", f"{timing['min']:.1f}", f"{spread(timing):.0f}%",
                      f"{result['cpuMsPerFace']['median']:.1f}"]
        engine_timing, ort_timing = engine["msPerFace"], ort["msPerFace"]
        cells.append(f"{engine_timing['median'] / ort_timing['median']:.2f}")
        cells.append(f"{engine_timing['min'] / ort_timing['min']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| Measurement | AuraFace (Swift) | onnxruntime | AuraFace / onnxruntime |")
    lines.append("|---|---:|---:|---:|")
    # With one thread, CPU time per face counts only the work done, not the time spent waiting
    # for a CPU, so it changes least when other programs load the machine.
    for engine, ort, _, _ in rows:
        if engine["threads"] != 1:
            continue
        e, o = engine["cpuMsPerFace"]["median"], ort["cpuMsPerFace"]["median"]
        lines.append(f"| CPU ms per face, batch {engine['batchSize']}, 1 thread | {e:.1f} | {o:.1f} "
                     f"| {e / o:.2f} |")
    e, o = engine_load["load"]["ms"], ort_load["load"]["ms"]
    lines.append(f"| load vs session creation, ms (median of {e['count']}) | {e['median']:.0f} "
                 f"| {o['median']:.0f} | {e['median'] / o['median']:.2f} |")
    e, o = engine_load["memoryAfterLoad"].get("vmRSSMiB"), ort_load["memoryAfterLoad"].get("vmRSSMiB")
    if e and o:
        lines.append(f"| RSS after load vs after session creation, MiB | {e:.0f} | {o:.0f} | {e / o:.2f} |")
    for engine, ort, engine_report, ort_report in rows:
        if engine["batchSize"] != 1:
            continue
        e, o = peak_rss(engine_report), peak_rss(ort_report)
        threads = "thread" if engine["threads"] == 1 else "threads"
        lines.append(f"| peak RSS, batch 1, {engine['threads']} {threads}, MiB | {e:.0f} | {o:.0f} "
                     f"| {e / o:.2f} |")
    for engine, ort, engine_report, ort_report in rows:
        if engine["batchSize"] == 1:
            continue
        e, o = peak_rss(engine_report), peak_rss(ort_report)
        threads = "thread" if engine["threads"] == 1 else "threads"
        lines.append(f"| peak RSS, batch {engine['batchSize']}, {engine['threads']} {threads}, MiB "
                     f"| {e:.0f} | {o:.0f} | {e / o:.2f} |")

    for engine, _, _, _ in rows:
        cached_mib = engine.get("cachedBuffersMiB")
        if cached_mib is not None:
            threads = "thread" if engine["threads"] == 1 else "threads"
            lines.append(f"| activation buffers kept between calls, batch {engine['batchSize']}, "
                         f"{engine['threads']} {threads}, MiB | {cached_mib:.0f} | | |")

    comparisons = prescott_comparisons(run_dir, rows)
    if comparisons:
        lines.append("")
        lines.append(f"OpenBLAS kernels, AuraFace at batch 1: the core in use ({blas['coreName']}, "
                     f"{blas['coreTypeSource']}) against OPENBLAS_CORETYPE=Prescott.")
        lines.append("")
        lines.append("| Threads | OpenBLAS core | ms per face, median | min | CPU ms per face "
                     "| Prescott / chosen, medians | CPU |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|")
        for chosen, prescott_report in comparisons:
            forced = configuration(prescott_report)
            for result, core in ((chosen, blas["coreName"]), (forced, prescott_report["blas"]["coreName"])):
                timing = result["msPerFace"]
                ratio, cpu_ratio = "1.00", "1.00"
                if result is forced:
                    ratio = f"{timing['median'] / chosen['msPerFace']['median']:.2f}"
                    cpu_ratio = f"{result['cpuMsPerFace']['median'] / chosen['cpuMsPerFace']['median']:.2f}"
                lines.append(f"| {result['threads']} | {core} | {timing['median']:.1f} | {timing['min']:.1f} "
                             f"| {result['cpuMsPerFace']['median']:.1f} | {ratio} | {cpu_ratio} |")
    plain_rows = variant_comparisons(run_dir, rows, "plain")
    if plain_rows:
        lines.append("")
        lines.append("Convolution path at batch 1: Winograd (the default) against `--convolution plain`, "
                     "which keeps the 3x3 kernels as the file has them (im2col and GEMM).")
        lines.append("")
        lines.append("| Threads | Convolution | ms per face, median | min | peak RSS, MiB "
                     "| time / onnxruntime | peak RSS / onnxruntime |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|")
        for engine, plain_report in plain_rows:
            ort, ort_report = next((o, r) for e, o, _, r in rows if e is engine)
            engine_report = next(r for e, _, r, _ in rows if e is engine)
            plain = configuration(plain_report)
            for result, report, name in ((engine, engine_report, "winograd"), (plain, plain_report, "plain")):
                timing = result["msPerFace"]
                rss = peak_rss(report)
                lines.append(f"| {result['threads']} | {name} | {timing['median']:.1f} | {timing['min']:.1f} "
                             f"| {rss:.0f} | {timing['median'] / ort['msPerFace']['median']:.2f} "
                             f"| {rss / peak_rss(ort_report):.2f} |")
    return "\n".join(lines) + "\n"


def variant_comparisons(run_dir, rows, variant):
    """Pair each engine-b1-t{T}-{variant}.json with the engine's result at batch 1, T threads."""
    pairs = []
    for engine, _, _, _ in rows:
        if engine["batchSize"] != 1:
            continue
        path = Path(run_dir) / f"engine-b1-t{engine['threads']}-{variant}.json"
        if path.exists():
            pairs.append((engine, load_json(path)))
    return pairs


def prescott_comparisons(run_dir, rows):
    """Pair each engine-b1-t{T}-prescott.json with the engine's result at batch 1, T threads."""
    pairs = []
    for engine, _, _, _ in rows:
        path = Path(run_dir) / f"engine-b{engine['batchSize']}-t{engine['threads']}-prescott.json"
        if path.exists():
            pairs.append((engine, load_json(path)))
    return pairs


# A 5x7 pixel font: seven rows per glyph, the five low bits of each row from left to right.
FONT = {
    "A": "0E 11 11 11 1F 11 11", "B": "1E 11 11 1E 11 11 1E", "C": "0E 11 10 10 10 11 0E",
    "D": "1C 12 11 11 11 12 1C", "E": "1F 10 10 1E 10 10 1F", "F": "1F 10 10 1E 10 10 10",
    "G": "0E 11 10 17 11 11 0F", "H": "11 11 11 1F 11 11 11", "I": "0E 04 04 04 04 04 0E",
    "J": "07 02 02 02 02 12 0C", "K": "11 12 14 18 14 12 11", "L": "10 10 10 10 10 10 1F",
    "M": "11 1B 15 15 11 11 11", "N": "11 11 19 15 13 11 11", "O": "0E 11 11 11 11 11 0E",
    "P": "1E 11 11 1E 10 10 10", "Q": "0E 11 11 11 15 12 0D", "R": "1E 11 11 1E 14 12 11",
    "S": "0F 10 10 0E 01 01 1E", "T": "1F 04 04 04 04 04 04", "U": "11 11 11 11 11 11 0E",
    "V": "11 11 11 11 11 0A 04", "W": "11 11 11 15 15 15 0A", "X": "11 11 0A 04 0A 11 11",
    "Y": "11 11 11 0A 04 04 04", "Z": "1F 01 02 04 08 10 1F",
    "0": "0E 11 13 15 19 11 0E", "1": "04 0C 04 04 04 04 0E", "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E", "4": "02 06 0A 12 1F 02 02", "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E", "7": "1F 01 02 04 08 08 08", "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C", ".": "00 00 00 00 00 0C 0C", ",": "00 00 00 00 0C 04 08",
    ":": "00 0C 0C 00 0C 0C 00", "-": "00 00 00 1F 00 00 00", "/": "00 01 02 04 08 10 00",
    "(": "02 04 08 08 08 04 02", ")": "08 04 02 02 02 04 08", "=": "00 00 1F 00 1F 00 00",
    "%": "18 19 02 04 08 13 03", "+": "00 04 04 1F 04 04 00", " ": "00 00 00 00 00 00 00",
}
SCALE = 2
GLYPH_WIDTH = 6 * SCALE  # 5 columns and 1 column of spacing
LINE_HEIGHT = 10 * SCALE


def draw_text(image, x, y, text, color=(0, 0, 0)):
    for character in text.upper():
        rows = FONT.get(character, FONT[" "]).split()
        for row_index, row in enumerate(rows):
            bits = int(row, 16)
            for column in range(5):
                if bits & (1 << (4 - column)):
                    top, left = y + row_index * SCALE, x + column * SCALE
                    image[top:top + SCALE, left:left + SCALE] = color
        x += GLYPH_WIDTH


def fill(image, x0, y0, x1, y1, color):
    image[max(y0, 0):y1, max(x0, 0):x1] = color


def encode_png(image):
    """Encode an RGB uint8 array as a PNG file (colour type 2, no filtering)."""
    height, width, _ = image.shape

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + chunk(b"IEND", b""))


ENGINE_COLOR = (31, 119, 180)
ORT_COLOR = (255, 127, 14)
PRESCOTT_COLOR = (150, 150, 150)


def draw_chart(run_dir, path):
    """Draw ms per face (median bars, min-max whiskers) for each configuration."""
    run_dir = Path(run_dir)
    rows = collect(run_dir)
    bars = []  # (group label, bar label, color, summary)
    for engine, ort, engine_report, _ in rows:
        threads = "THREAD" if engine["threads"] == 1 else "THREADS"
        group = f"BATCH {engine['batchSize']}, {engine['threads']} {threads}"
        bars.append((group, f"AURAFACE ({engine_report['blas']['coreName']})", ENGINE_COLOR, engine["msPerFace"]))
        bars.append((None, "ONNXRUNTIME", ORT_COLOR, ort["msPerFace"]))
    for engine, prescott in prescott_comparisons(run_dir, rows):
        threads = "THREAD" if engine["threads"] == 1 else "THREADS"
        bars.append((f"BATCH {engine['batchSize']}, {engine['threads']} {threads}, CORE FORCED",
                     "AURAFACE (PRESCOTT)", PRESCOTT_COLOR, configuration(prescott)["msPerFace"]))

    label_width, bar_area, margin = 34 * GLYPH_WIDTH, 560, 20
    title = "AURAFACE (SWIFT) VS ONNXRUNTIME, MS PER FACE: MEDIAN BAR, MIN-MAX LINE. LOWER IS BETTER."
    machine = machine_description()
    subtitle = f"{machine['cpu']}, {machine['availableCPUs']} CPUS, {rows[0][2]['architecture']}, {rows[0][2]['date'][:10]}"
    load_start = read_text(run_dir / "loadavg-start.txt")
    if load_start:
        subtitle += f", LOAD AVERAGE {load_start.split()[0]} AT START"
    text_width = max(len(title), len(subtitle)) * GLYPH_WIDTH
    width = 2 * margin + max(label_width + bar_area + 12 * GLYPH_WIDTH, text_width)
    bar_height, group_gap = 22, 30
    groups = sum(1 for bar in bars if bar[0])
    height = 3 * LINE_HEIGHT + margin + len(bars) * (bar_height + 6) + groups * group_gap + LINE_HEIGHT + margin
    image = np.full((height, width, 3), 255, np.uint8)

    draw_text(image, margin, margin, title)
    draw_text(image, margin, margin + LINE_HEIGHT, subtitle, (90, 90, 90))
    scale_max = max(bar[3]["max"] for bar in bars) * 1.05
    x0 = margin + label_width
    y = margin + 3 * LINE_HEIGHT
    for group, label, color, summary in bars:
        if group:
            y += group_gap - LINE_HEIGHT
            draw_text(image, margin, y, group)
            y += LINE_HEIGHT
        draw_text(image, margin + 2 * GLYPH_WIDTH, y + (bar_height - 7 * SCALE) // 2, label, (60, 60, 60))
        length = int(bar_area * summary["median"] / scale_max)
        fill(image, x0, y, x0 + length, y + bar_height, color)
        low = x0 + int(bar_area * summary["min"] / scale_max)
        high = x0 + int(bar_area * summary["max"] / scale_max)
        middle = y + bar_height // 2
        fill(image, low, middle - 1, high + 1, middle + 1, (0, 0, 0))
        fill(image, low, y + 5, low + 2, y + bar_height - 5, (0, 0, 0))
        fill(image, high - 1, y + 5, high + 1, y + bar_height - 5, (0, 0, 0))
        draw_text(image, max(x0 + length, high) + 8, y + (bar_height - 7 * SCALE) // 2, f"{summary['median']:.1f}")
        y += bar_height + 6
    fill(image, x0 - 1, margin + 3 * LINE_HEIGHT, x0 + 1, y, (0, 0, 0))
    Path(path).write_bytes(encode_png(image))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="the folder with one benchmark.sh run's JSON files")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--chart", help="draw the chart to this PNG file")
    arguments = parser.parse_args(argv)
    tables = markdown_tables(arguments.run_dir)
    print(tables, end="")
    if arguments.markdown:
        Path(arguments.markdown).write_text(tables)
    if arguments.chart:
        draw_chart(arguments.run_dir, arguments.chart)


if __name__ == "__main__":
    main(sys.argv[1:])
