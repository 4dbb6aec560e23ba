"""Schemathesis's negative mode (its `negative_schema` strategy) on the suite's draft-7 schemas,
judged by python-jsonschema, for the README's comparison.

Setup (pinned): /tmp/venv/bin/pip install "schemathesis==4.32.5" "jsonschema[format]==4.25.1"
Run: /tmp/venv/bin/python benches/generators/schemathesis_negative.py
"""

import json
import pathlib
import warnings

import jsonschema
import jsonschema_rs
from hypothesis import HealthCheck, given, settings
from schemathesis.config import GenerationConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.negative import negative_schema

warnings.filterwarnings("ignore")
SUITE = pathlib.Path(__file__).resolve().parents[2] / (
    "crates/evkit-testkit/tests/data/json-schema-test-suite/tests/draft7"
)
PER_SCHEMA = 20


def main():
    schemas = produced = json_values = really_invalid = 0
    errors = {}
    for f in sorted(SUITE.glob("*.json")):
        for i, case in enumerate(json.loads(f.read_text())):
            schema = case["schema"]
            if "localhost:1234" in json.dumps(schema):
                continue
            schemas += 1
            drawn = []
            try:
                strategy = negative_schema(
                    schema,
                    f"{f.name}-{i}",
                    ParameterLocation.BODY,
                    "application/json",
                    GenerationConfig(),
                    custom_formats={},
                    validator_cls=jsonschema_rs.Draft7Validator,
                )

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
            except Exception as e:  # noqa: BLE001 - any refusal counts
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            if drawn and schemas == 1:
                print("a drawn value:", repr(drawn[0])[:300])
            values = [getattr(v, "value", v) for v in drawn]
            json_ok = []
            for v in values:
                try:
                    json.dumps(v)
                    json_ok.append(v)
                except (TypeError, ValueError):
                    pass
            if json_ok:
                produced += 1
            values = json_ok
            validator = jsonschema.Draft7Validator(
                schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
            )
            for v in values:
                json_values += 1
                if not validator.is_valid(v):
                    really_invalid += 1
    print(
        f"schemathesis negative: {produced} of {schemas} schemas produced JSON values; "
        f"{json_values} JSON values, {really_invalid} really invalid "
        f"({100 * really_invalid / max(json_values, 1):.1f} %); refusals {errors}"
    )


if __name__ == "__main__":
    main()
