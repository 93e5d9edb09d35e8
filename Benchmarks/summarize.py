#!/usr/bin/env python3
"""Summarize package-benchmark's text output: the median (p50) of every rate metric of each benchmark,
and, where ../shared/limits.md measured one, this machine's limit beside it.

  swift package benchmark --no-progress | python3 summarize.py

Paired benchmarks ("…: Samsa vs C library") time Samsa and its baseline back to back in each run and
report both rates and their ratio (median of the per-run ratios), so drift of the machine cancels out.
"""
import re
import sys

SCALE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
RATE_METRICS = ("MB/s", "records/s", "Samsa MB/s", "baseline MB/s", "Samsa/baseline %")
# Measured limits of these machines (../shared/limits.md): (benchmark pattern, metric, what, figure).
LIMITS = [
    (r"^CRC-32C hardware", "MB/s", "SSE4.2 3-stream C", 31_100),
    (r"^CRC-32C software", "MB/s", "slicing-by-8 C", 2_400),
    (r"^lz4 compress 1 MiB", "Samsa MB/s", "lz4 -1 CLI, 1 MiB blocks", 725),
    (r"^lz4 decompress 1 MiB", "Samsa MB/s", "lz4 -1 CLI, 1 MiB blocks", 4_837),
    (r"^zstd compress 1 MiB", "Samsa MB/s", "zstd -3 CLI, 1 MiB blocks", 290),
    (r"^zstd decompress 1 MiB", "Samsa MB/s", "zstd -3 CLI, 1 MiB blocks", 1_704),
    (r"^lz4 compress 64 KiB", "Samsa MB/s", "lz4 -1 CLI, 64 KiB blocks", 645),
    (r"^lz4 decompress 64 KiB", "Samsa MB/s", "lz4 -1 CLI, 64 KiB blocks", 3_901),
    (r"^zstd compress 64 KiB", "Samsa MB/s", "zstd -3 CLI, 64 KiB blocks", 306),
    (r"^zstd decompress 64 KiB", "Samsa MB/s", "zstd -3 CLI, 64 KiB blocks", 1_524),
]


def parse(text):
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    results, name = {}, None
    metric_pattern = "|".join(re.escape(m) for m in sorted(RATE_METRICS, key=len, reverse=True))
    for line in text.splitlines():
        if line and not line.startswith(("│", "╒", "╞", "├", "╘", "=", " ", "[")) and "%]" not in line:
            name = line.strip()
            continue
        m = re.match(r"│ (" + metric_pattern + r")(?: \(([KMG])\))?\s+│(.*)", line)
        if m and name:
            cells = [c.strip() for c in m.group(3).split("│")]
            results.setdefault(name, {})[m.group(1)] = float(cells[2]) * SCALE[m.group(2) or ""]
    return results


def main():
    results = parse(sys.stdin.read())
    if not results:
        sys.exit("no benchmark results found in the input")
    print(f"{'benchmark':48} {'metric':18} {'median':>12}  limit (limits.md)")
    for name, metrics in results.items():
        for metric, value in metrics.items():
            limit = ""
            for pattern, limit_metric, what, figure in LIMITS:
                if re.match(pattern, name) and metric == limit_metric:
                    limit = f"{value / figure:.0%} of {what} {figure:,} MB/s"
            print(f"{name:48} {metric:18} {value:>12,.0f}  {limit}")


if __name__ == "__main__":
    main()
