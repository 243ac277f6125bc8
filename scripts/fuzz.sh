#!/usr/bin/env bash
# Runs each libFuzzer target in BUILD_DIR/fuzz for a bounded time over its corpus in
# fuzz/corpus/<target>/, one target at a time, and prints execs, coverage and findings.
# New corpus entries go to a scratch folder (BUILD_DIR/fuzz-new/<target>/); with FUZZ_MERGE=1
# the ones that add coverage are merged into fuzz/corpus/<target>/. A crash's input is saved as
# BUILD_DIR/fuzz-artifacts/<target>/crash-*; fix it and copy it to fuzz/regressions/<target>/.
# Usage: scripts/fuzz.sh BUILD_DIR [target...]   (env: FUZZ_SECONDS, FUZZ_MERGE)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:?usage: $0 BUILD_DIR [target...]}
shift
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
  for d in "$ROOT"/fuzz/corpus/*/; do TARGETS+=("$(basename "$d")"); done
fi

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin=$BUILD/fuzz/${t}_fuzz
  if [[ ! -x $bin ]]; then
    echo "fuzz: $bin is not built" >&2
    failed+=("$t")
    continue
  fi
  new=$BUILD/fuzz-new/$t
  art=$BUILD/fuzz-artifacts/$t
  log=$BUILD/fuzz-logs/$t.log
  mkdir -p "$new" "$art" "$(dirname "$log")"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$art/")
  [[ -f $ROOT/fuzz/dict/$t.dict ]] && args+=(-dict="$ROOT/fuzz/dict/$t.dict")
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (log: $log)"
  # The scratch folder comes first: libFuzzer writes what it finds into the first folder.
  "$bin" "${args[@]}" "$new" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  if ((rc != 0)); then
    finding="CRASH (exit $rc): $(ls -t "$art" | head -1); see $log"
    grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|terminate called' "$log" >&2
    failed+=("$t")
  else
    finding="no crash"
  fi
  line="$t: ${execs:-?} execs in ${SECONDS_PER_TARGET}s (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corpus:-?}, peak RSS ${rss:-?} MB: $finding"
  summary+=("$line")
  echo "fuzz: $line"
  if [[ ${FUZZ_MERGE:-0} == 1 && $rc == 0 ]]; then
    "$bin" -merge=1 "$ROOT/fuzz/corpus/$t" "$new" >>"$log" 2>&1 &&
      echo "fuzz: merged new coverage into fuzz/corpus/$t ($(ls "$ROOT/fuzz/corpus/$t" | wc -l) files)"
  fi
done

echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz: findings or failures in: ${failed[*]}" >&2
  exit 1
fi
