#!/usr/bin/env bash
# The schema gate for CI: blocks a change to the catalog that would break a deployed producer or
# consumer. Compares the working tree's catalog with the one at BASE_REF (default origin/main)
# and, when a contracts folder exists, holds the service contracts against the change.
#
#   bash ci/schema-gate.sh [BASE_REF] [evkit gate options...]
#
# Env: EVKIT (the evkit binary; default `evkit`), EVKIT_CATALOG (default `schemas`),
# EVKIT_CONTRACTS (default `contracts`). Exit 0 compatible, 1 incompatible, 2 could not run.
set -euo pipefail
ref=${1:-origin/main}
shift || true
evkit=${EVKIT:-evkit}
catalog=${EVKIT_CATALOG:-schemas}
contracts=${EVKIT_CONTRACTS:-contracts}
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
if ! git archive "$ref" -- "$catalog" | tar -x -C "$base"; then
  echo "schema gate: cannot read $catalog at $ref" >&2
  exit 2
fi
args=(--catalog "$catalog" gate --base "$base/$catalog")
if [ -d "$contracts" ]; then
  args+=(--contracts "$contracts")
fi
echo "schema gate: $catalog against $ref"
$evkit "${args[@]}" "$@"
