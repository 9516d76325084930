#!/usr/bin/env bash
# Fuzzes every target (or those named) with libFuzzer for SECONDS each, or
# until RUNS executions, whichever comes first:
#   tests/fuzz/run.sh SECONDS [RUNS] [target...]     e.g. tests/fuzz/run.sh 600 2000000
#   FUZZ_ARCH=i386 tests/fuzz/run.sh ...             32-bit x86 build: size_t is 32 bits
#                                                    as in WASM (all targets but image)
# Needs clang-14 and libclang-rt-14-dev (for i386 also libc6-dev-i386,
# lib32stdc++-12-dev, lib32gcc-12-dev). Starts from the committed seeds
# (tests/fuzz/corpus/<target>) plus what earlier runs found
# (build/fuzz-work/<target>); crashes go to build/fuzz-work/crashes/<target>/
# (copy a reproducer to tests/fuzz/regressions/<target>/ once fixed).
# Prints one line per target: executions, coverage, corpus, crashes.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [RUNS] [target...]}
runs=${2:-2000000}
shift $(( $# >= 2 ? 2 : 1 ))
targets=("$@")
if [ "${FUZZ_ARCH:-}" = i386 ]; then
  build=build/libfuzzer32 cc="clang-14 -m32" work=build/fuzz-work32 skip=image
else
  build=build/libfuzzer cc=clang-14 work=build/fuzz-work skip=
fi
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.c; do
    t=${src##*/fuzz_}; t=${t%.c}
    [ "$t" = "$skip" ] || targets+=("$t")
  done
fi

make -s -j"$(nproc)" BUILD="$build" CC="$cc" SANITIZE=fuzzer "${targets[@]/#/$build/fuzz/fuzz_}"
summary=$work/summary.txt
mkdir -p "$work"
: > "$summary"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$work/crashes/$t"
  log=$work/$t.log
  set +e
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a memory bomb.
  "$build/fuzz/fuzz_$t" "$work/$t" "tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/crashes/$t/" >"$log" 2>&1
  rc=$?
  set -e
  done_line=$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" || echo 'Done ? runs')
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -1 || true)
  crashes=$(find "$work/crashes/$t" -type f | wc -l)
  line="$t: rc=$rc ${done_line#Done } ${cov:-cov: ?} crashes=$crashes"
  echo "$line" | tee -a "$summary"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; fi
done
exit $status
