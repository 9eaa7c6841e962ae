"""Validates EVE lines against Suricata's JSON schema (Draft 7, as Suricata's
own tests do). Arguments: `--check-schema` to first check the schema itself
against Draft 7's metaschema (most of a short run's time), the schema, then
files of one JSON object per line. Prints one JSON object: records checked
per event_type and every distinct violation (event_type, where in the
record, which rule) with how often it occurred, the first file and line
that showed it and its message."""

import json
import sys

from jsonschema import Draft7Validator


def where(error):
    return "/".join(str(p) for p in error.absolute_path) or "(record)"


def main():
    args = sys.argv[1:]
    check = args[0] == "--check-schema"
    if check:
        args = args[1:]
    schema = json.load(open(args[0]))
    if check:
        Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    checked = {}
    violations = {}
    for path in args[1:]:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                record = json.loads(line)
                kind = record.get("event_type", "?")
                checked[kind] = checked.get(kind, 0) + 1
                for e in validator.iter_errors(record):
                    key = (kind, where(e), e.validator)
                    v = violations.setdefault(
                        key, {"count": 0, "first": f"{path}:{n}", "message": e.message[:200]}
                    )
                    v["count"] += 1
    print(json.dumps({
        "checked": checked,
        "violations": [
            {"event_type": k[0], "where": k[1], "rule": k[2], **v}
            for k, v in sorted(violations.items())
        ],
    }))


main()
