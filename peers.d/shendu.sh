#!/usr/bin/env bash
# shendu as a peer of the benchmark harness (BENCH.md, peers/run.sh).
#
#   peers.d/shendu.sh THREADS
#
# Builds the shendu binary (cargo build --release -p shendu; a no-op when nothing changed),
# runs `shendu bench --threads THREADS --json` and prints one line per figure:
#   RESULT<TAB>workload<TAB>shendu<TAB>threads<TAB>value<TAB>unit<TAB>extra
# The repository is SHENDU_REPO, else the checkout this script lies in (follows symlinks), so
# the script also works when copied or linked into a copy of peers/peers.d/. Build output and
# shendu's progress go to stderr (run.sh keeps them in its .info log). Extra arguments after
# THREADS go to `shendu bench` (e.g. --only W1 --reps 5); SHENDU_BENCH_ARGS does the same.
# PEER_ONLY (run.sh's workload filter, e.g. "W4,W5") and PEER_REPS are honored as the
# Python peers honor them.
set -euo pipefail

threads=${1:-1}
shift || true

repo=${SHENDU_REPO:-}
if [ -z "$repo" ]; then
  here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
  repo=$(cd "$here/.." && pwd)
fi
if [ ! -f "$repo/crates/shendu/Cargo.toml" ]; then
  echo "shendu.sh: $repo is not the shendu repository; set SHENDU_REPO" >&2
  exit 2
fi

(cd "$repo" && cargo build --release -q -p shendu --bin shendu) >&2
bin=${CARGO_TARGET_DIR:-$repo/target}/release/shendu
[ -x "$bin" ] || { echo "shendu.sh: $bin was not built" >&2; exit 2; }

# shellcheck disable=SC2086  # SHENDU_BENCH_ARGS is a list of words
# A failed workload makes shendu exit non-zero after printing the others: report those anyway.
filter=()
[ -n "${PEER_ONLY:-}" ] && filter+=(--only "$PEER_ONLY")
[ -n "${PEER_REPS:-}" ] && filter+=(--reps "$PEER_REPS")
rc=0
json=$("$bin" bench --threads "$threads" --json "${filter[@]}" ${SHENDU_BENCH_ARGS:-} "$@") || rc=$?

[ -n "$json" ] && printf '%s' "$json" | python3 -c '
import json, sys
for f in json.load(sys.stdin):
    extra = f.get("extra", "")
    if f.get("pct_of_peak") is not None:
        extra = (extra + "; " if extra else "") + "%.0f%% of FMA peak" % f["pct_of_peak"]
    print("RESULT\t%s\tshendu\t%d\t%.6f\t%s\t%s" % (f["workload"], f["threads"], f["value"], f["unit"], extra.replace("\t", " ")))
'
exit "$rc"
