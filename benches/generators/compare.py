"""evkit's generators beside hypothesis-jsonschema, judged by python-jsonschema.

python-jsonschema is a second, independent implementation of JSON Schema (evkit's own checks
use the Rust `jsonschema` crate), so this also cross-checks every value evkit generated.

Setup (pinned):
    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install "hypothesis-jsonschema==0.23.1" "hypothesis==6.98.18" \
        "jsonschema[format]==4.25.1"
    (hypothesis-jsonschema 0.23.1 calls `many.more()`, which later hypothesis releases removed:
    with hypothesis 6.170 it fails with AttributeError on 142 of the 240 schemas.)
    cargo run --release -p evkit-testkit --example suite_report -- draft7 --dump /tmp/evkit-dump
    /tmp/venv/bin/python benches/generators/compare.py /tmp/evkit-dump/draft7.jsonl

Prints one Markdown table: schemas with valid output, values judged, wrong claims, and (for
evkit) invalid values python-jsonschema accepts.
"""

import json
import pathlib
import sys
import time
import warnings

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import HypothesisException
from hypothesis_jsonschema import from_schema

warnings.filterwarnings("ignore")

SUITE = pathlib.Path(__file__).resolve().parents[2] / (
    "crates/evkit-testkit/tests/data/json-schema-test-suite/tests/draft7"
)
PER_SCHEMA = 20


def judge(schema):
    cls = jsonschema.Draft7Validator
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def suite_schemas():
    for f in sorted(SUITE.glob("*.json")):
        for case in json.loads(f.read_text()):
            if "localhost:1234" in json.dumps(case["schema"]):
                continue
            satisfiable = any(t["valid"] for t in case["tests"])
            yield f.name, case["description"], case["schema"], satisfiable


def hypothesis_run():
    schemas = generated = satisfiable = generated_sat = values = wrong = 0
    refused = {}
    t0 = time.time()
    for name, desc, schema, sat in suite_schemas():
        schemas += 1
        satisfiable += sat
        drawn = []
        try:
            strategy = from_schema(schema)

            @settings(
                max_examples=PER_SCHEMA,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(strategy)
            def collect(v):
                drawn.append(v)

            collect()
        except (HypothesisException, Exception) as e:  # noqa: BLE001 - any refusal counts
            kind = type(e).__name__
            refused[kind] = refused.get(kind, 0) + 1
        if drawn:
            generated += 1
            generated_sat += sat
            v = judge(schema)
            for x in drawn:
                values += 1
                if not v.is_valid(x):
                    wrong += 1
    return {
        "schemas": schemas,
        "satisfiable": satisfiable,
        "generated_sat": generated_sat,
        "values": values,
        "wrong": wrong,
        "refused": refused,
        "seconds": time.time() - t0,
    }


def evkit_run(dump):
    valid = invalid = wrong_valid = wrong_invalid = 0
    disagreements = []
    for line in open(dump):
        s = json.loads(line)
        ok = judge(s["schema"]).is_valid(s["value"])
        if s["valid"]:
            valid += 1
            if not ok:
                wrong_valid += 1
                disagreements.append(("valid", s))
        else:
            invalid += 1
            if ok:
                wrong_invalid += 1
                disagreements.append(("invalid", s))
    return valid, invalid, wrong_valid, wrong_invalid, disagreements


def main():
    h = hypothesis_run()
    print(f"hypothesis-jsonschema: {h}", file=sys.stderr)
    print("| draft 7 (240 schemas, no remote refs) | hypothesis-jsonschema 0.23.1 | evkit |")
    print("|---|---:|---:|")
    if len(sys.argv) > 1:
        valid, invalid, wv, wi, dis = evkit_run(sys.argv[1])
        for kind, s in dis[:20]:
            print(f"python-jsonschema disagrees ({kind}): {json.dumps(s)[:300]}", file=sys.stderr)
    else:
        valid = invalid = wv = wi = "-"
    print(
        f"| satisfiable schemas with valid output | {h['generated_sat']} of {h['satisfiable']}"
        f" ({100 * h['generated_sat'] / h['satisfiable']:.1f} %) | see the conformance table |"
    )
    print(f"| valid values judged by python-jsonschema | {h['values']} | {valid} |")
    print(f"| ... that python-jsonschema rejects | {h['wrong']} | {wv} |")
    print(f"| invalid values judged by python-jsonschema | (generates none) | {invalid} |")
    print(f"| ... that python-jsonschema accepts | - | {wi} |")
    print(f"| refusals | {h['refused']} | |")


if __name__ == "__main__":
    main()
