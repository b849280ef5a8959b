# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Validation of conntrace's JSON Lines against docs/schema.json.

    from ctschema import check_line
    problems = check_line(raw_bytes)     # [] when the line is valid

A line is valid when it is UTF-8, one JSON object, and the object validates
against the schema (JSON Schema 2020-12, Debian's python3-jsonschema, with
the ipv4/ipv6 formats checked).
"""

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schema.json"


@lru_cache(maxsize=1)
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check_record(rec):
    """Problems of one parsed record, as readable strings."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}"
            for e in validator().iter_errors(rec)]


def check_line(raw):
    """Problems of one raw line (bytes, with or without its newline)."""
    if isinstance(raw, str):
        raw = raw.encode()
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if b"\n" in raw:
        return ["a newline inside the line"]
    try:
        rec = json.loads(raw.decode("utf-8"))
    except ValueError as e:     # includes UnicodeDecodeError
        return [f"not JSON: {e}"]
    if not isinstance(rec, dict):
        return ["not a JSON object"]
    return check_record(rec)


def check_file(path):
    """(records, problems) for every line of a JSON Lines file."""
    records, problems = [], []
    data = Path(path).read_bytes()
    if data and not data.endswith(b"\n"):
        problems.append(f"{path}: the last line has no newline: {data[-80:]!r}")
    for n, raw in enumerate(data.splitlines(keepends=True), 1):
        p = check_line(raw)
        if p:
            problems.append(f"{path}:{n}: {p[:3]} in {raw[:300]!r}")
        else:
            records.append(json.loads(raw))
    return records, problems
