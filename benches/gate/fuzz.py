"""The gate's verdicts on random schema changes, judged again by tools evkit does not use.

`crates/evkit-testkit/tests/gate_fuzz.rs` makes random changes to a schema and writes each one,
with whether the gate blocks it backward and forward, as a JSON line. Here, per change and
direction, hypothesis-jsonschema draws values from the producing side's schema (the deployed
one for backward, the change for forward) and python-jsonschema, with its format checker,
judges them with the consuming side's. A value refused where the gate did not block is a
break the gate let through.

Setup (pinned):
    python3 -m venv /tmp/venvk
    /tmp/venvk/bin/pip install "hypothesis-jsonschema==0.23.1" "hypothesis==6.98.18" \
        "jsonschema==4.26.0"
    EVKIT_GATE_FUZZ_CASES=1000 EVKIT_GATE_FUZZ_OUT=/tmp/gate-fuzz.jsonl \
        cargo test -p evkit-testkit --test gate_fuzz
    /tmp/venvk/bin/python benches/gate/fuzz.py /tmp/gate-fuzz.jsonl

Prints the counts, then every change where the two disagree.
"""

import json
import sys
import warnings

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

warnings.filterwarnings("ignore")
PER_DIRECTION = 100


def judge(schema):
    cls = jsonschema.Draft202012Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def draws(schema):
    """Up to PER_DIRECTION values hypothesis-jsonschema draws from `schema`, or an error."""
    out = []
    try:
        strategy = from_schema(schema)

        @settings(
            max_examples=PER_DIRECTION,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def collect(v):
            out.append(v)

        collect()
    except Exception as e:  # noqa: BLE001 - a schema hypothesis-jsonschema cannot read
        return out, type(e).__name__
    return out, None


def main():
    lines = [json.loads(line) for line in open(sys.argv[1])]
    directions = breaks = blocked = 0
    let_through, errors, judged = [], {}, 0
    for i, change in enumerate(lines):
        if i % 100 == 0:
            print(f"... {i} changes", file=sys.stderr, flush=True)
        for d in ("backward", "forward"):
            producer, consumer = (
                (change["old"], change["new"])
                if d == "backward"
                else (change["new"], change["old"])
            )
            values, error = draws(producer)
            if error:
                errors[error] = errors.get(error, 0) + 1
            consumer_judge, producer_judge = judge(consumer), judge(producer)
            # Only values the producing side accepts count (python-jsonschema decides).
            values = [v for v in values if producer_judge.is_valid(v)]
            judged += len(values)
            refused = next((v for v in values if not consumer_judge.is_valid(v)), None)
            directions += 1
            blocks = change["blocks"][d]
            blocked += blocks
            if refused is not None:
                breaks += 1
                if not blocks:
                    let_through.append((change["case"], d, change["edits"], refused))
    print(f"{len(lines)} changes, {directions} directions, {judged} values judged")
    print(f"breaks hypothesis-jsonschema found: {breaks}; the gate blocked {blocked}")
    print(f"let through: {len(let_through)}")
    print(f"schemas hypothesis-jsonschema could not draw from: {errors or 'none'}")
    for case, d, edits, value in let_through:
        print(f"- case {case} {d}: {edits}: {json.dumps(value)}")


if __name__ == "__main__":
    main()
