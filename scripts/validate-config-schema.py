#!/usr/bin/env python3
"""Validates gateway configuration files against config/gateway.schema.json.

Usage: scripts/validate-config-schema.py [CONFIG.json ...]

Without arguments, checks every *.json in config/ and config/examples/ except the schema itself.
Prints each problem as `FILE: JSON-PATH: message` and exits 1 if any file fails, 0 otherwise
(2 when the schema itself cannot be used). Needs the `jsonschema` package (pip install jsonschema).
"""

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "config" / "gateway.schema.json"


def default_config_files():
    files = []
    for folder in (REPO_ROOT / "config", REPO_ROOT / "config" / "examples"):
        if folder.is_dir():
            files += sorted(p for p in folder.glob("*.json") if p.is_file() and p.resolve() != SCHEMA_PATH.resolve())
    return files


def display_name(path):
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv):
    try:
        import jsonschema
    except ImportError:
        print("error: the jsonschema package is missing; install it with `pip install jsonschema`", file=sys.stderr)
        return 2

    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as error:
        print(f"error: cannot use the schema {SCHEMA_PATH}: {error}", file=sys.stderr)
        return 2
    validator = jsonschema.Draft202012Validator(schema)

    paths = [Path(arg) for arg in argv] if argv else default_config_files()
    if not paths:
        print("no configuration files to check", file=sys.stderr)
        return 0

    failed = False
    for path in paths:
        name = display_name(path) if not argv else str(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            print(f"{name}: $: cannot be read: {error.strerror or error}")
            failed = True
            continue
        except ValueError as error:
            print(f"{name}: $: not valid JSON: {error}")
            failed = True
            continue
        errors = sorted(validator.iter_errors(document), key=lambda e: (e.json_path, e.message))
        for error in errors:
            print(f"{name}: {error.json_path}: {error.message}")
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
