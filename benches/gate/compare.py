"""evkit's schema gate beside the peer tools users would pick, on the same schema changes.

The cases are `crates/evkit-testkit/tests/data/gate-cases.json` (the cases of evkit's own
per-rule tests): one change per rule id, plus changes that break nothing. Each case states the
truth: which directions break (`backward`: the change refuses what the deployed schema
accepted; `forward`: it accepts what the deployed schema refused), or `none`.

Every witness evkit prints is judged again by python-jsonschema (an independent
implementation): the producing side must accept it and the consuming side refuse it.

Peers:
- jsoncompat 0.3.1 (PyPI; Rust core): `check_compat(old, new, role)`, role `deserializer`
  (backward) and `serializer` (forward).
- json-schema-diff-validator 0.4.2 (npm, Atlassian): backward only; it throws on a breaking
  change.

Setup:
    python3 -m venv /tmp/venvk && /tmp/venvk/bin/pip install jsoncompat==0.3.1 jsonschema==4.26.0
    (cd /tmp/npmdiff && npm install json-schema-diff-validator@0.4.2)
    cargo run -p evkit-testkit --example gate_compare > /tmp/evkit-gate.jsonl
    /tmp/venvk/bin/python benches/gate/compare.py /tmp/evkit-gate.jsonl /tmp/npmdiff

Prints a Markdown table per direction: breaking changes caught, harmless changes blocked
(false alarms), and errors; then every case where a tool is wrong.
"""

import json
import pathlib
import subprocess
import sys

import jsoncompat
import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = json.loads((ROOT / "crates/evkit-testkit/tests/data/gate-cases.json").read_text())


def truth(case):
    d = case.get("breaks") or case["direction"]
    return {"backward": d in ("backward", "both"), "forward": d in ("forward", "both")}


def accepts(schema, value):
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


def jsoncompat_verdicts(case):
    out = {}
    for direction, role in (("backward", "deserializer"), ("forward", "serializer")):
        try:
            ok = jsoncompat.check_compat(json.dumps(case["old"]), json.dumps(case["new"]), role)
            out[direction] = not ok
        except Exception as e:  # noqa: BLE001 - any failure is the tool's answer
            out[direction] = f"error: {str(e)[:60]}"
    return out


def diff_validator_verdicts(npm_dir):
    script = """
const d = require('json-schema-diff-validator');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(c => { try { d.validateSchemaCompatibility(c.old, c.new); return false; }
  catch (e) { return /not backward compatible/.test(String(e)) ? true : 'error: ' + String(e).slice(0, 60); } });
console.log(JSON.stringify(out));
"""
    run = subprocess.run(["node", "-e", script], input=json.dumps(CASES), capture_output=True,
                         text=True, cwd=npm_dir, check=True)
    return [{"backward": v} for v in json.loads(run.stdout)]


def main():
    evkit = [json.loads(line) for line in pathlib.Path(sys.argv[1]).read_text().split("\n") if line]
    npm = diff_validator_verdicts(sys.argv[2])
    assert len(evkit) == len(CASES) == len(npm)
    # evkit's witnesses, judged by python-jsonschema.
    bad_witnesses = 0
    judged = 0
    for case, e in zip(CASES, evkit):
        for w in e["witnesses"]:
            value = json.loads(w["value"])
            producer, consumer = ((case["old"], case["new"]) if w["direction"] == "backward"
                                  else (case["new"], case["old"]))
            judged += 1
            if not (accepts(producer, value) and not accepts(consumer, value)):
                bad_witnesses += 1
                print(f"WRONG WITNESS {case['rule']}: {value}")
    tools = {
        "evkit gate": [{"backward": e["backward"], "forward": e["forward"]} for e in evkit],
        "jsoncompat 0.3.1": [jsoncompat_verdicts(c) for c in CASES],
        "json-schema-diff-validator 0.4.2": npm,
    }
    wrong = []
    for direction in ("backward", "forward"):
        breaking = [i for i, c in enumerate(CASES) if truth(c)[direction]]
        harmless = [i for i, c in enumerate(CASES) if not truth(c)[direction]]
        print(f"\n**{direction.capitalize()}** ({len(breaking)} breaking changes, "
              f"{len(harmless)} that break nothing {direction})\n")
        print("| tool | breaks caught | breaks let through | false alarms | errors |")
        print("|---|---:|---:|---:|---:|")
        for name, verdicts in tools.items():
            if direction not in verdicts[0]:
                print(f"| {name} | n/a | n/a | n/a | n/a |")
                continue
            caught = missed = alarms = errors = 0
            for i, v in enumerate(verdicts):
                answer = v[direction]
                if isinstance(answer, str):
                    errors += 1
                    wrong.append((name, direction, CASES[i]["rule"], answer))
                elif i in breaking and answer:
                    caught += 1
                elif i in breaking:
                    missed += 1
                    wrong.append((name, direction, CASES[i]["rule"], "let through"))
                elif answer:
                    alarms += 1
                    wrong.append((name, direction, CASES[i]["rule"], "false alarm"))
            print(f"| {name} | {caught} | {missed} | {alarms} | {errors} |")
    print(f"\nevkit witnesses judged by python-jsonschema {jsonschema.__name__}: {judged}, "
          f"wrong: {bad_witnesses}")
    micros = sorted(e["micros"] for e in evkit)
    print(f"evkit time per case (debug build): median {micros[len(micros) // 2] / 1000:.1f} ms, "
          f"max {micros[-1] / 1000:.1f} ms")
    print("\nWhere a tool is wrong:\n")
    for name, direction, rule, what in wrong:
        print(f"- {name}, {direction}: `{rule}`: {what}")


if __name__ == "__main__":
    main()
