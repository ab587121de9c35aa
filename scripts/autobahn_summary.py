#!/usr/bin/env python3
"""Summarises an Autobahn|Testsuite fuzzingclient report (its index.json).

    autobahn_summary.py REPORT_DIR [--markdown]

Prints the count of each behavior (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED) and of
each closing behavior, then every case that is not OK, NON-STRICT or INFORMATIONAL; exits 1 when
there is any such case (or no case at all).
"""
import collections
import json
import os
import sys

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case_id):
    return [int(part) for part in case_id.split(".")]


def main():
    report_dir = sys.argv[1]
    markdown = "--markdown" in sys.argv[2:]
    with open(os.path.join(report_dir, "index.json")) as file:
        index = json.load(file)
    failures = []
    for agent, cases in sorted(index.items()):
        behaviors = collections.Counter(case["behavior"] for case in cases.values())
        closing = collections.Counter(case["behaviorClose"] for case in cases.values())
        durations = [case.get("duration", 0) for case in cases.values()]
        if markdown:
            print(f"| agent | cases | " + " | ".join(sorted(behaviors)) + " |")
            print("|---|---|" + "---|" * len(behaviors))
            print(f"| {agent} | {len(cases)} | " + " | ".join(str(behaviors[b]) for b in sorted(behaviors)) + " |")
        else:
            print(f"{agent}: {len(cases)} cases; behavior: " + ", ".join(f"{k} {v}" for k, v in sorted(behaviors.items()))
                  + "; closing: " + ", ".join(f"{k} {v}" for k, v in sorted(closing.items()))
                  + f"; slowest case {max(durations or [0])} ms")
        for case_id in sorted(cases, key=case_key):
            case = cases[case_id]
            if case["behavior"] not in PASSING or case["behaviorClose"] not in PASSING | {"UNIMPLEMENTED"}:
                failures.append(f"{agent} {case_id}: {case['behavior']} (closing {case['behaviorClose']})")
        if not cases:
            failures.append(f"{agent}: no case ran")
    for failure in failures:
        print("not passing:", failure)
    sys.exit(1 if failures or not index else 0)


if __name__ == "__main__":
    main()
