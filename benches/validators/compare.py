#!/usr/bin/env python3
"""Side by side: evkit's contract check against the JSON Schema validators teams pick elsewhere
(Python's fastjsonschema and jsonschema, JavaScript's Ajv), on the same generated messages.

`evkit generate-examples` writes N valid messages of the topic and N that each break one named
rule. Every validator parses each payload from its bytes and validates it against the topic's
schema; the time per message is the median of the passes over the valid ones. The invalid ones
judge the verdicts: a payload that breaks a payload rule (`keyword@/path`) must be rejected, and
one whose broken rule is in the key or headers must be accepted (its payload is valid): a
validator that disagrees is not checking what the schema says, however fast it is. evkit's rows
come from `benches/examples/validate_lines.rs` on the same files: its whole contract check (key,
headers with the identity, payload) and its payload check alone (parse plus the payload schema),
which is the same work as the other validators do.

Setup, from the repository root:

    cargo build --release -p evkit-cli && cargo build --release -p evkit-benches --example validate_lines
    python3 -m pip install fastjsonschema==2.22.3 jsonschema==4.26.0
    (cd benches/validators && npm install --no-save --no-audit --no-fund ajv@8.20.0 ajv-formats@3.0.1)
    python3 benches/validators/compare.py --topic platform.evkit.todo-created --count 2000

CI runs it on the debug builds of its test run, for the verdicts only (`--profile debug
--check`): `--check` exits 1 when evkit's verdicts differ from what each generated message
breaks. The other validators' disagreements are reported, never fatal; a validator that is not
installed is skipped with a note.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent


def generate(bin_dir, topic, count, seed, invalid, out):
    cmd = [str(bin_dir / "evkit"), "--catalog", str(ROOT / "schemas"),
           "generate-examples", "--topic", topic, "--count", str(count), "--seed", str(seed)]
    if invalid:
        cmd += ["--invalid-ratio", "1"]
    out.write_text(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return [json.loads(line) for line in out.read_text().split("\n") if line.strip()]


def timed(payloads, passes, ok):
    per = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for p in payloads:
            ok(p)
        per.append((time.perf_counter() - t0) * 1e6 / len(payloads))
    return statistics.median(per)


def python_validators(schema):
    try:
        import fastjsonschema
        import jsonschema
    except ImportError as e:
        print(f"(Python validators skipped: {e}; see the setup above)", file=sys.stderr)
        return []

    fast = fastjsonschema.compile(schema)

    def fast_ok(p):
        try:
            fast(json.loads(p))
            return True
        except (ValueError, fastjsonschema.JsonSchemaValueException):
            return False

    cls = jsonschema.validators.validator_for(schema)
    full = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def full_ok(p):
        try:
            return full.is_valid(json.loads(p))
        except ValueError:
            return False

    from importlib.metadata import version
    return [
        (f"fastjsonschema {version('fastjsonschema')}", "Python " + sys.version.split()[0], fast_ok),
        (f"jsonschema {version('jsonschema')} ({cls.__name__}, format checker)",
         "Python " + sys.version.split()[0], full_ok),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topic", default="platform.evkit.todo-created")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--profile", choices=["release", "debug"], default="release",
                    help="which build of evkit and validate_lines to run (debug: verdicts only)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when evkit's verdicts differ from what the messages break")
    args = ap.parse_args()
    bin_dir = ROOT / "target" / args.profile
    schema_path = ROOT / "schemas" / f"{args.topic}.event.json"
    schema = json.loads(schema_path.read_text())
    tmp = pathlib.Path(tempfile.mkdtemp())
    valid = generate(bin_dir, args.topic, args.count, 1, False, tmp / "valid.jsonl")
    invalid = generate(bin_dir, args.topic, args.count, 2, True, tmp / "invalid.jsonl")
    # A payload rule is `keyword@/instance/path`; key and header rules are words.
    expected = [("@" not in m["broken"]) for m in invalid]
    n_payload_broken = expected.count(False)
    vp = [m["payload"].encode() for m in valid]
    ip = [m["payload"].encode() for m in invalid]

    rows = []

    def evkit(file):
        out = subprocess.run([str(bin_dir / "examples" / "validate_lines"), args.topic,
                              str(file), str(args.passes)], check=True, capture_output=True,
                             text=True).stdout
        return json.loads(out)

    ev, ev_bad = evkit(tmp / "valid.jsonl"), evkit(tmp / "invalid.jsonl")
    if ev["payload_accepted"] != args.count:
        sys.exit(f"{args.topic}: evkit's payload check accepted {ev['payload_accepted']} of the "
                 f"{args.count} valid messages, so the payload is not an instance of the topic's "
                 "schema (a structured CloudEvent wraps it): not comparable with payload-only "
                 "validators")
    rows.append(("evkit, whole contract (key, headers, identity, payload)", "Rust", ev["full"],
                 ev["full_accepted"], args.count - ev_bad["full_accepted"], None))
    rows.append(("evkit, payload only (parse + payload schema)", "Rust", ev["payload"],
                 ev["payload_accepted"], None, ev_bad["payload_verdicts"]))
    payload_us = ev["payload"]
    for name, lang, ok in python_validators(schema):
        us = timed(vp, args.passes, ok)
        verdicts = [ok(p) for p in ip]
        rows.append((name, lang, us, sum(ok(p) for p in vp), None, verdicts))
    ajv = HERE / "node_modules" / "ajv"
    if ajv.exists():
        def node(file):
            out = subprocess.run(["node", str(HERE / "ajv_bench.js"), str(schema_path), str(file),
                                  str(args.passes)], check=True, capture_output=True,
                                 text=True).stdout
            return json.loads(out)
        good, bad = node(tmp / "valid.jsonl"), node(tmp / "invalid.jsonl")
        version = json.loads((ajv / "package.json").read_text())["version"]
        node_v = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        rows.append((f"Ajv {version} (2020-12, ajv-formats)", f"Node {node_v}", good["us"],
                     sum(good["verdicts"]), None, bad["verdicts"]))
    else:
        print(f"(Ajv skipped: no {ajv}; see the setup above)", file=sys.stderr)

    avg = sum(len(p) for p in vp) / len(vp)
    print(f"{args.topic}: {args.count} valid messages (payloads of {avg:.0f} bytes on average), "
          f"{args.count} invalid ones ({n_payload_broken} break a payload rule, "
          f"{args.count - n_payload_broken} a key or header rule); median of {args.passes} passes")
    print()
    print("| validator | runtime | µs per message | × evkit's payload check | valid accepted "
          f"(of {args.count}) | payload-rule breaks rejected (of {n_payload_broken}) | "
          f"key/header breaks, payload accepted (of {args.count - n_payload_broken}) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, lang, us, accepted, rejected_all, verdicts in rows:
        if verdicts is None:
            caught = f"{rejected_all} of {args.count} invalid messages rejected"
            fine = "n/a: it checks them"
        else:
            caught = str(sum(1 for e, v in zip(expected, verdicts) if not e and not v))
            fine = str(sum(1 for e, v in zip(expected, verdicts) if e and v))
        print(f"| {name} | {lang} | {us:.2f} | {us / payload_us:.1f} | {accepted} | {caught} | {fine} |")
    missed = {}
    for name, _, _, _, _, verdicts in rows:
        if verdicts is None:
            continue
        for m, e, v in zip(invalid, expected, verdicts):
            if e != v:
                rule = m["broken"]
                missed.setdefault(name, {}).setdefault(rule, 0)
                missed[name][rule] += 1
    for name, rules in missed.items():
        print(f"\n{name} disagreed with the contract on: "
              + ", ".join(f"{r} ×{n}" for r, n in sorted(rules.items(), key=lambda x: -x[1])))
    if args.check:
        wrong = []
        if ev["full_accepted"] != args.count:
            wrong.append(f"the whole check accepted {ev['full_accepted']} of {args.count} valid messages")
        if ev_bad["full_accepted"] != 0:
            wrong.append(f"the whole check accepted {ev_bad['full_accepted']} invalid messages")
        if ev_bad["payload_verdicts"] != expected:
            n = sum(1 for e, v in zip(expected, ev_bad["payload_verdicts"]) if e != v)
            wrong.append(f"the payload check disagreed with the broken rule on {n} messages")
        if wrong:
            sys.exit(f"{args.topic}: evkit's verdicts are wrong: " + "; ".join(wrong))
        print(f"\n{args.topic}: evkit's verdicts match what every message breaks")


if __name__ == "__main__":
    main()
