#!/usr/bin/env bash
# The validate bench's ratio b/a (parse + full contract check against parse alone) counted in
# instructions with valgrind's callgrind instead of time: deterministic on a noisy machine.
# Each side runs 1,000 and 11,000 times; the difference divided by 10,000 is the cost of one
# message without start-up (catalog loading, schema compilation). Column (s) is the payload
# schema alone (jsonschema's part of (b), `Contract::check_event` on the parsed payload; for the
# notifications topic the root schema's `anyOf` rather than the definition `dataschema` picks).
# (b) runs with the generated crate's build-time validators answering `is_valid`, as a service
# does; (b_rt) with runtime validators only (`Catalog::load`), as `evkit validate` does.
# Column (a′) is the parse the contract runs itself (one UTF-8 pass over the buffer, then
# `serde_json::from_str`): b/a′ is the cost of the checks alone, a stricter measure than b/a.
#   bash benches/callgrind.sh            (needs valgrind: apt-get install valgrind)
# With `chain`, a consumer's per-message work instead (`chain_instructions`, todo-created): what
# the bench's hand-written consumer does (parse + jsonschema), evkit's copy of the record, its
# chain, and both as a partition worker runs them; then the whole contract checked the plain way
# (the bench's whole-contract consumer), and the worker and that check with a tenant of its own
# per message (`_tenants`: no identity is seen twice).
#   bash benches/callgrind.sh chain
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = chain ]; then
  cargo build --release -q -p evkit-benches --example chain_instructions
  bin=target/release/examples/chain_instructions
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  each() { # what n -> instructions
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$bin" "$1" "$2" 2>&1 |
      awk '/Collected/ {print $4}'
  }
  hand=$(($(each hand 11000) - $(each hand 1000)))
  echo "| per message | instructions | × hand-written |"
  echo "|---|---:|---:|"
  for what in hand copy chain worker whole worker_tenants whole_tenants; do
    n=$(($(each "$what" 11000) - $(each "$what" 1000)))
    awk -v w="$what" -v n="$n" -v h="$hand" 'BEGIN { printf "| %s | %.0f | %.2f |\n", w, n / 10000, n / h }'
  done
  exit 0
fi
cargo build --release -q -p evkit-benches --example validate_instructions
bin=target/release/examples/validate_instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # topic what n -> instructions
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$bin" "$1" "$2" "$3" 2>&1 |
    awk '/Collected/ {print $4}'
}
echo "| topic | (a) parse | (b) parse + check | b/a | (b_rt) runtime validators only | b_rt/a | (a′) parse via &str | b/a′ | (s) payload schema alone | s/a |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for topic in platform.evkit.todo-created platform.evkit.todo-indexed \
  platform.evkit.domain-registered platform.notifications.ingress; do
  a=$(($(count "$topic" parse 11000) - $(count "$topic" parse 1000)))
  b=$(($(count "$topic" check 11000) - $(count "$topic" check 1000)))
  r=$(($(count "$topic" check_runtime 11000) - $(count "$topic" check_runtime 1000)))
  a2=$(($(count "$topic" parse_str 11000) - $(count "$topic" parse_str 1000)))
  s=$(($(count "$topic" schema 11000) - $(count "$topic" schema 1000)))
  awk -v t="$topic" -v a="$a" -v b="$b" -v r="$r" -v a2="$a2" -v s="$s" \
    'BEGIN { printf "| %s | %.0f | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f |\n", t, a / 10000, b / 10000, b / a, r / 10000, r / a, a2 / 10000, b / a2, s / 10000, s / a }'
done
