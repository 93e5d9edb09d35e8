"""Medians of Benchmarks/perf_compare.sh output: records/s, process CPU per record (user+system), latency."""
import json, sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if '|' not in line: continue
    label, rest = line.split('|', 1)
    try:
        j = json.loads(rest[:rest.index('} TIME') + 1])
        u, s = rest.split('TIME')[1].split()[:2]
    except Exception as e:
        print("skip", label, e); continue
    cpu = (float(u) + float(s)) * 1e9 / j['records']
    rows[label].append((j['records_per_sec'], cpu, j['latency_ms']['p50'], j['latency_ms']['p99']))
for label, v in rows.items():
    rate = statistics.median(x[0] for x in v); cpu = statistics.median(x[1] for x in v)
    print(f"{label:48s} n={len(v)} median {rate/1e6:6.2f} M rec/s (runs {', '.join(f'{x[0]/1e6:.2f}' for x in v)}), process CPU {cpu:5.0f} ns/rec, p50 {statistics.median(x[2] for x in v):.1f} ms, p99 {statistics.median(x[3] for x in v):.1f} ms")
