#!/usr/bin/env python3
"""A steady HTTP/1.1 load for reload tests, independent of the gateway's code.

    reload_load.py URL STARTED_FILE STOP_FILE [--threads N] [--max-seconds S]

Each thread keeps one keep-alive connection (Python's http.client) and sends GET URL in a loop;
after an error the connection is reopened; a request that got no answer, or an answer other
than 200, counts as failed. STARTED_FILE is written once every thread has had one answer;
the load stops when STOP_FILE exists (or after --max-seconds). A connection the server closes
between requests counts as a failure too: a reload must not cut keep-alive connections. Prints
JSON:
{"requests": n, "failed": n, "failures": ["..."], "statuses": {"200": n}}.
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("started_file")
    parser.add_argument("stop_file")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    deadline = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    totals = {"requests": 0, "failed": 0, "failures": [], "statuses": {}}
    answered = threading.Barrier(args.threads + 1)

    def worker():
        connection = None
        first = True
        while time.monotonic() < deadline and not os.path.exists(args.stop_file):
            if connection is None:
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            try:
                connection.request("GET", url.path or "/")
                response = connection.getresponse()
                response.read()
                status = response.status
                failure = None if status == 200 else f"status {status}"
                if response.will_close:
                    connection.close()
                    connection = None
            except Exception as error:  # noqa: BLE001 - every other failure is reported
                connection.close()
                connection = None
                status, failure = None, f"{type(error).__name__}: {error}"
            with lock:
                totals["requests"] += 1
                key = str(status)
                totals["statuses"][key] = totals["statuses"].get(key, 0) + 1
                if failure:
                    totals["failed"] += 1
                    if len(totals["failures"]) < 20:
                        totals["failures"].append(failure)
            if first:
                first = False
                answered.wait(timeout=30)
        if first:
            try:
                answered.wait(timeout=0)
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    try:
        answered.wait(timeout=30)
        with open(args.started_file, "w") as started:
            started.write("started\n")
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join(timeout=args.max_seconds + 15)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
