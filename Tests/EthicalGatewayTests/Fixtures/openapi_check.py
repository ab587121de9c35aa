#!/usr/bin/env python3
"""Checks recorded admin API answers against an OpenAPI 3.1 document, with the jsonschema library.

    openapi_check.py OPENAPI.json RECORDS.json

RECORDS.json is a list of {"method", "path" (the document's path template), "status",
"contentType", "body"}. Every answer must be documented: its path and method, its status, its
content type, and a JSON body that validates against the response's schema. Prints
"checked N answers" and exits 0, or lists every mismatch and exits 1.
"""
import json
import sys

import jsonschema


def resolve(document, value):
    while isinstance(value, dict) and "$ref" in value and len(value) == 1:
        node = document
        for part in value["$ref"].lstrip("#/").split("/"):
            node = node[part]
        value = node
    return value


def main():
    document = json.load(open(sys.argv[1]))
    records = json.load(open(sys.argv[2]))
    problems = []
    for record in records:
        where = f'{record["method"]} {record["path"]} -> {record["status"]}'
        item = document["paths"].get(record["path"])
        if item is None:
            # Paths outside the document answer 404 with a problem document.
            if record["status"] == 404:
                item = {method: {"responses": {"404": {"$ref": "#/components/responses/Problem"}}}
                        for method in ("get", "put", "post", "delete")}
            else:
                problems.append(f"{where}: the path is not documented")
                continue
        method = "get" if record["method"] == "HEAD" else record["method"].lower()
        operation = item.get(method)
        if record["status"] == 405:
            operation = {"responses": {"405": {"$ref": "#/components/responses/Problem"}}}
        if operation is None:
            problems.append(f"{where}: the method is not documented")
            continue
        response = operation["responses"].get(str(record["status"]))
        if response is None:
            problems.append(f"{where}: the status is not documented")
            continue
        response = resolve(document, response)
        content = response.get("content")
        if not content or record["method"] == "HEAD":
            continue
        media = record["contentType"].split(";")[0].strip()
        if media not in content:
            problems.append(f"{where}: content type {media!r} is not documented ({', '.join(content)})")
            continue
        schema = dict(resolve(document, content[media].get("schema", {})))
        schema["components"] = document["components"]
        if not media.endswith("json"):
            if schema.get("type") == "string" and isinstance(record["body"], str):
                continue
            problems.append(f"{where}: a {media} body needs a string schema")
            continue
        try:
            body = json.loads(record["body"])
        except ValueError as error:
            problems.append(f"{where}: the body is not JSON: {error}")
            continue
        validator = jsonschema.Draft202012Validator(schema)
        for error in validator.iter_errors(body):
            problems.append(f"{where}: {error.message} at {list(error.absolute_path)}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"checked {len(records)} answers")


if __name__ == "__main__":
    main()
