#!/usr/bin/env python3
"""Summarize package-benchmark's text output: the median (p50) of each benchmark's rate metric, the
ratio of each Samsa figure to its baseline measured in the same run, and this machine's limits from
../shared/limits.md where one applies.

  swift package benchmark --no-progress | python3 summarize.py
"""
import re
import sys

SCALE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
# Baseline of each Samsa benchmark, measured in the same run: (samsa name pattern, baseline name).
PAIRS = [
    (r"^(lz4|zstd) (compress|decompress) (.+) Samsa$", r"\1 \2 \3 C direct"),
    (r"^Append (.+) Samsa$", r"Append \1 write\(2\)"),
]
# Measured limits of these machines (../shared/limits.md), for figures that have one.
LIMITS = {
    r"^CRC-32C hardware": ("SSE4.2 3-stream C", 31_100, "MB/s"),
    r"^CRC-32C software": ("slicing-by-8 C", 2_400, "MB/s"),
    r"^lz4 compress 1 MiB": ("lz4 -1 CLI, 1 MiB blocks", 725, "MB/s"),
    r"^lz4 decompress 1 MiB": ("lz4 -1 CLI, 1 MiB blocks", 4_837, "MB/s"),
    r"^zstd compress 1 MiB": ("zstd -3 CLI, 1 MiB blocks", 290, "MB/s"),
    r"^zstd decompress 1 MiB": ("zstd -3 CLI, 1 MiB blocks", 1_704, "MB/s"),
    r"^lz4 compress 64 KiB": ("lz4 -1 CLI, 64 KiB blocks", 645, "MB/s"),
    r"^lz4 decompress 64 KiB": ("lz4 -1 CLI, 64 KiB blocks", 3_901, "MB/s"),
    r"^zstd compress 64 KiB": ("zstd -3 CLI, 64 KiB blocks", 306, "MB/s"),
    r"^zstd decompress 64 KiB": ("zstd -3 CLI, 64 KiB blocks", 1_524, "MB/s"),
}


def parse(text):
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    results, name = {}, None
    for line in text.splitlines():
        if line and not line.startswith(("│", "╒", "╞", "├", "╘", "=", " ", "[")) and "%" not in line:
            name = line.strip()
            continue
        m = re.match(r"│ (MB/s|records/s|µs|us)(?: \(([KMG])\))?\s+│(.*)", line)
        if m and name:
            cells = [c.strip() for c in m.group(3).split("│")]
            results[name] = (float(cells[2]) * SCALE[m.group(2) or ""], m.group(1))
    return results


def main():
    results = parse(sys.stdin.read())
    if not results:
        sys.exit("no benchmark results found in the input")
    print(f"{'benchmark':44} {'median':>14}  {'vs baseline (same run)':34} limit (limits.md)")
    for name, (value, unit) in results.items():
        ratio = ""
        for pattern, baseline in PAIRS:
            if re.match(pattern, name):
                base_name = re.sub(pattern, baseline, name).replace("\\", "")
                if base_name in results:
                    ratio = f"{value / results[base_name][0]:.2f}x of {base_name}"
        limit = ""
        for pattern, (what, figure, limit_unit) in LIMITS.items():
            if re.match(pattern, name):
                limit = f"{value / figure:.0%} of {what} {figure:,} {limit_unit}"
        print(f"{name:44} {value:>10,.0f} {unit:<4} {ratio:34} {limit}")


if __name__ == "__main__":
    main()
