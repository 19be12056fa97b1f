#!/usr/bin/env bash
# Runs every fuzz target of capture-shared for SECONDS each (default 60) and prints, per target,
# the executions done and whether a crash was found. Needs cargo-fuzz (`cargo install cargo-fuzz`)
# and a nightly toolchain (`rustup toolchain install nightly`). Crashes land in
# shared/fuzz/artifacts/<target>/; a corpus grows in shared/fuzz/corpus/<target>/ (both ignored).
#
#   bash shared/fuzz/run.sh 300            # all targets, 5 minutes each
#   bash shared/fuzz/run.sh 60 scn_reader  # one target
set -euo pipefail
seconds=${1:-60}
shift || true
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(scn_reader frame_header control_message)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/capture-target}/fuzz
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (see artifacts/$target and $log)"
    status=1
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  echo "$target: ${seconds}s, $execs executions, $result"
done
exit $status
