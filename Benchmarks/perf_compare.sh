#!/bin/bash
# `samsa perf produce` of two builds, interleaved in one session (issue 12): a baseline and a new binary.
# Usage: BASE=old/samsa NEW=new/samsa Benchmarks/perf_compare.sh [ROUNDS] > runs.txt; python3 Benchmarks/perf_compare.py runs.txt
# Each line: label, the --json summary, user and system CPU seconds (/usr/bin/time). The baseline rows use
# only options every samsa has; --send-batch rows are the new binary only.
BASE=${BASE:?set BASE to the baseline samsa binary}
NEW=${NEW:?set NEW to the samsa binary to measure}
RUNS=${1:-3}
D=$(mktemp -d)/data
one() { # label binary args...
  local label=$1 bin=$2; shift 2
  rm -rf $D
  local out
  out=$( { /usr/bin/time -f "TIME %U %S" $bin perf produce --dir $D --json "$@" 2>&1 1>&3 | grep TIME; } 3>&1 )
  echo "$label|$(echo "$out" | tr '\n' ' ')"
}
for r in $(seq 1 $RUNS); do
  one "A base every-append 5M" $BASE --records 5000000 --record-size 100
  one "A new every-append 5M" $NEW --records 5000000 --record-size 100
  one "A new every-append 5M send-batch 1000" $NEW --records 5000000 --record-size 100 --send-batch 1000
  one "B base never 5M" $BASE --records 5000000 --record-size 100 --flush never
  one "B new never 5M" $NEW --records 5000000 --record-size 100 --flush never
  one "B new never 5M send-batch 1000" $NEW --records 5000000 --record-size 100 --flush never --send-batch 1000
  one "C new every-append 5M send-batch 1000 1MiB" $NEW --records 5000000 --record-size 100 --send-batch 1000 --batch-bytes 1048576
  one "D base producers 4" $BASE --records 5000000 --record-size 100 --producers 4
  one "D new producers 4" $NEW --records 5000000 --record-size 100 --producers 4
  one "E base 1KiB every-append" $BASE --records 500000 --record-size 1024
  one "E new 1KiB every-append" $NEW --records 500000 --record-size 1024
  one "E new 1KiB every-append send-batch 1000 1MiB" $NEW --records 500000 --record-size 1024 --send-batch 1000 --batch-bytes 1048576
done
rm -rf $D
