"""Validates OCSF events (NDJSON on stdin) against the OCSF JSON Schema of the version each event
names in metadata.version, with the profiles it declares in metadata.profiles: what a validating
consumer (Amazon Security Lake, an OCSF pipeline) checks. The schemas come from the PyPI package
ocsf-json-schema (generated from schema.ocsf.io), validated with jsonschema (Draft 2020-12).

Prints one line per problem, "line N: path: message", and exits 1 if there is any; 0 otherwise.
Installed by tests/install-deps.sh.
"""

import json
import sys

import jsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

validators = {}


def validator(event):
    metadata = event.get("metadata", {})
    version = metadata.get("version", "1.3.0")
    profiles = tuple(sorted(metadata.get("profiles", [])))
    key = (version, event.get("class_uid"), profiles)
    if key not in validators:
        schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
        name = schema.lookup_class_name_from_uid(class_uid=event.get("class_uid"))
        class_schema = schema.get_class_schema(class_name=name, profiles=list(profiles))
        validators[key] = jsonschema.Draft202012Validator(class_schema)
    return validators[key]


problems = 0
count = 0
for number, line in enumerate(sys.stdin, 1):
    if not line.strip():
        continue
    count += 1
    try:
        event = json.loads(line)
    except ValueError as err:
        print(f"line {number}: not JSON: {err}")
        problems += 1
        continue
    for error in validator(event).iter_errors(event):
        path = ".".join(str(p) for p in error.absolute_path) or "(event)"
        print(f"line {number}: {path}: {error.message[:300]}")
        problems += 1
print(f"{count} event(s), {problems} problem(s)", file=sys.stderr)
sys.exit(1 if problems else 0)
