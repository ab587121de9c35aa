#!/usr/bin/env python3
"""Parses Prometheus text exposition with the official client library's parser
(prometheus_client.parser), independent of the gateway's writer.

    prometheus_parse.py FILE

Prints JSON: {"families": {name: type}, "samples": [{"name", "labels", "value"}]}; exits 1 with
the parser's error when the text is not valid exposition format.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1]).read()
    families = {}
    samples = []
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
    print(json.dumps({"families": families, "samples": samples}))


if __name__ == "__main__":
    main()
