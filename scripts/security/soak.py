#!/usr/bin/env python3
"""Helper for scripts/security/soak.sh (the 10-minute soak of mixed proxy / JWT / relay traffic).

Subcommands:
  relay   WebSocket subscribers (Centrifugal protocol v2 JSON) with churn + a fixed-rate publisher
          on the relay's HTTP API; writes a line of counters every 5 s and a final JSON result.
  sample  Samples a process every N seconds: VmRSS, open fds, threads, CPU; writes a CSV.
  report  Merges the samples, the h2load per-request logs and the relay counters into one CSV,
          writes summary.md and soak.png, and exits 1 when a threshold is crossed.

Only the standard library, `websockets` (relay) and `matplotlib` (report, optional) are used.
"""

import argparse
import asyncio
import bisect
import csv
import glob
import json
import os
import random
import signal
import statistics
import sys
import time

# --------------------------------------------------------------------------- relay traffic


class RelayStats:
    def __init__(self):
        self.published = 0
        self.published_by_channel = {}
        self.pub_errors = 0
        self.pub_error_samples = []
        self.pub_latencies = []
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0  # publications skipped (offset jumped) and not recovered
        self.connects = 0
        self.reconnects = 0
        self.churned = 0
        self.ws_errors = 0
        self.ws_error_samples = []
        self.unexpected_closes = 0
        self.recover_failed = 0
        self.recovered_pubs = 0
        self.connected = 0
        self.subscribed = 0
        self.delivery_latencies = []  # sampled


async def relay_main(a):
    import websockets  # noqa: deferred so `sample`/`report` work without it

    st = RelayStats()
    loop = asyncio.get_running_loop()
    t_start = time.time()
    t_end = t_start + a.duration
    stop = asyncio.Event()
    stop_publishing = asyncio.Event()
    publishing_done = asyncio.Event()
    channels = [f"{a.namespace}:ch{i}" for i in range(a.channels)]
    churn_flags = [asyncio.Event() for _ in range(a.clients)]
    all_subscribed = asyncio.Event()
    first_subscribed = set()
    ws_url = a.ws_url

    def note_error(kind, e):
        st.ws_errors += 1
        if len(st.ws_error_samples) < 20:
            st.ws_error_samples.append(f"{kind}: {type(e).__name__}: {e}")

    async def client(i):
        ch = channels[i % len(channels)]
        offset = None
        epoch = None
        first = True
        while not stop.is_set():
            churned = False
            try:
                async with websockets.connect(
                    ws_url,
                    subprotocols=["centrifuge-json"],
                    ping_interval=None,
                    open_timeout=15,
                    close_timeout=5,
                    max_size=2**20,
                ) as ws:
                    st.connects += 1
                    if not first:
                        st.reconnects += 1
                    await ws.send(json.dumps({"id": 1, "connect": {"token": a.ws_token, "name": "soak"}}))
                    sub = {"channel": ch}
                    if epoch is not None:
                        sub.update({"recover": True, "offset": offset, "epoch": epoch})
                    await ws.send(json.dumps({"id": 2, "subscribe": sub}))
                    st.connected += 1
                    try:
                        recv_task = None
                        while True:
                            churn_wait = asyncio.ensure_future(churn_flags[i].wait())
                            stop_wait = asyncio.ensure_future(stop.wait())
                            recv_task = asyncio.ensure_future(ws.recv())
                            done, _ = await asyncio.wait(
                                {churn_wait, stop_wait, recv_task}, return_when=asyncio.FIRST_COMPLETED
                            )
                            churn_wait.cancel()
                            stop_wait.cancel()
                            if recv_task not in done:
                                recv_task.cancel()
                                if churn_flags[i].is_set():
                                    churn_flags[i].clear()
                                    churned = True
                                    st.churned += 1
                                break
                            msg = recv_task.result()
                            for line in msg.split("\n"):
                                if not line:
                                    continue
                                obj = json.loads(line)
                                if not obj:  # server ping
                                    await ws.send("{}")
                                    continue
                                if "push" in obj:
                                    pub = obj["push"].get("pub")
                                    if pub is not None:
                                        offset = handle_pub(pub, offset)
                                    elif "unsubscribe" in obj["push"]:
                                        # the server dropped us (slow consumer): resubscribe with recovery
                                        await ws.send(json.dumps({"id": 3, "subscribe": {
                                            "channel": ch, "recover": True, "offset": offset, "epoch": epoch}}))
                                    continue
                                rid = obj.get("id")
                                if "error" in obj:
                                    note_error(f"reply {rid}", RuntimeError(json.dumps(obj["error"])))
                                    continue
                                if rid in (2, 3) and "subscribe" in obj:
                                    res = obj["subscribe"]
                                    if res.get("was_recovering"):
                                        if res.get("recovered"):
                                            for p in res.get("publications", []) or []:
                                                before = st.delivered
                                                offset = handle_pub(p, offset)
                                                st.recovered_pubs += st.delivered - before
                                        else:
                                            st.recover_failed += 1
                                    if res.get("epoch") is not None:
                                        epoch = res["epoch"]
                                    top = res.get("offset")
                                    if offset is None or (top is not None and top > offset and not res.get("recovered")):
                                        # first subscription (or lost recovery): start from the current top
                                        if offset is not None and top is not None:
                                            st.gaps += top - offset
                                        offset = top if top is not None else 0
                                    if first:
                                        first = False
                                        first_subscribed.add(i)
                                        if len(first_subscribed) == a.clients:
                                            all_subscribed.set()
                    finally:
                        st.connected -= 1
                    if not churned and not stop.is_set():
                        st.unexpected_closes += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # connection refused, closed by the server, timeout...
                if stop.is_set():
                    break
                if not churned:
                    st.unexpected_closes += 1
                note_error("ws", e)
            if stop.is_set():
                break
            await asyncio.sleep(0.2 if churned else 1.0 + random.random())

    def handle_pub(pub, offset):
        off = pub.get("offset")
        if off is not None and offset is not None:
            if off <= offset:
                st.duplicates += 1
                return offset
            if off > offset + 1:
                st.gaps += off - offset - 1
        st.delivered += 1
        d = pub.get("data") or {}
        if "t" in d and st.delivered % 10 == 0:
            st.delivery_latencies.append(time.time() - d["t"])
        return off if off is not None else offset

    async def publisher():
        # wait for every client's first subscription (bounded), so expected = published x subscribers
        try:
            await asyncio.wait_for(all_subscribed.wait(), timeout=min(60, a.duration / 4))
        except asyncio.TimeoutError:
            print(f"relay: only {len(first_subscribed)}/{a.clients} subscribed before publishing", file=sys.stderr)
        t0 = time.time()
        await asyncio.gather(*(publish_worker(j, t0) for j in range(a.pub_conns)))
        publishing_done.set()

    async def publish_worker(j, t0):
        # worker j sends publications j, j+W, j+2W, ... on its own keep-alive connection, each at its
        # scheduled time t0 + k / rate (a late one is sent at once: the schedule is kept, not shifted)
        host, port = a.api_host, a.api_port
        reader = writer = None
        k = j
        pub_end = t_end - a.drain
        while time.time() < pub_end and not stop_publishing.is_set():
            target = t0 + k / a.pub_rate
            now = time.time()
            if target > now:
                try:
                    await asyncio.wait_for(stop_publishing.wait(), timeout=target - now)
                    break
                except asyncio.TimeoutError:
                    pass
            ch = channels[k % len(channels)]
            k += a.pub_conns
            body = json.dumps({"channel": ch, "data": {"n": k, "t": time.time()}}).encode()
            req = (
                f"POST {a.api_path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {a.api_token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            t1 = time.time()
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
                writer.write(req)
                status, resp = await asyncio.wait_for(read_response(reader), 10)
                st.pub_latencies.append(time.time() - t1)
                if 200 <= status < 300 and b'"error"' not in resp:
                    st.published += 1
                    st.published_by_channel[ch] = st.published_by_channel.get(ch, 0) + 1
                else:
                    st.pub_errors += 1
                    if len(st.pub_error_samples) < 10:
                        st.pub_error_samples.append(f"{status} {resp[:200]!r}")
            except Exception as e:
                st.pub_errors += 1
                if len(st.pub_error_samples) < 10:
                    st.pub_error_samples.append(f"{type(e).__name__}: {e}")
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    async def churner():
        while not stop.is_set() and time.time() < t_end - a.drain - 10:
            try:
                await asyncio.wait_for(stop.wait(), timeout=a.churn_interval)
            except asyncio.TimeoutError:
                pass
            if stop.is_set() or stop_publishing.is_set() or time.time() >= t_end - a.drain - 10:
                break
            for i in random.sample(range(a.clients), min(a.churn_count, a.clients)):
                churn_flags[i].set()

    stats_f = open(a.stats, "a", buffering=1)

    async def reporter():
        while not stop.is_set():
            stats_f.write(json.dumps(snapshot()) + "\n")
            try:
                await asyncio.wait_for(stop.wait(), timeout=5)
            except asyncio.TimeoutError:
                pass

    def snapshot():
        return {
            "t": time.time(), "published": st.published, "pub_errors": st.pub_errors, "delivered": st.delivered,
            "connected": st.connected, "connects": st.connects, "reconnects": st.reconnects,
            "churned": st.churned, "ws_errors": st.ws_errors, "unexpected_closes": st.unexpected_closes,
            "gaps": st.gaps, "duplicates": st.duplicates,
        }

    async def graceful():
        # SIGTERM: stop publishing, give in-flight deliveries `drain` seconds, then stop
        stop_publishing.set()
        try:
            await asyncio.wait_for(publishing_done.wait(), timeout=15)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(a.drain)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(graceful()))

    tasks = []
    for i in range(a.clients):
        tasks.append(asyncio.create_task(client(i)))
        if i % 20 == 19:
            await asyncio.sleep(0.1)  # ramp: 200 clients in ~1 s
    rep = asyncio.create_task(reporter())
    pub = asyncio.create_task(publisher())
    churn = asyncio.create_task(churner())
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(1.0, t_end - time.time()))
    except asyncio.TimeoutError:
        pass
    stop.set()
    await asyncio.wait(tasks + [pub, churn, rep], timeout=20)
    stats_f.write(json.dumps(snapshot()) + "\n")
    stats_f.close()
    subs = {ch: sum(1 for i in range(a.clients) if channels[i % len(channels)] == ch) for ch in channels}
    expected = sum(st.published_by_channel.get(ch, 0) * n for ch, n in subs.items())
    lat = sorted(st.delivery_latencies)
    plat = sorted(st.pub_latencies)

    def pct(v, q):
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 1) if v else None

    result = {
        "clients": a.clients, "channels": len(channels), "subscribers_per_channel": subs,
        "published": st.published, "pub_errors": st.pub_errors, "pub_error_samples": st.pub_error_samples,
        "expected_deliveries": expected, "delivered": st.delivered, "duplicates": st.duplicates,
        "gaps": st.gaps, "recovered_pubs": st.recovered_pubs, "recover_failed": st.recover_failed,
        "connects": st.connects, "reconnects": st.reconnects, "churned": st.churned,
        "unexpected_closes": st.unexpected_closes, "ws_errors": st.ws_errors,
        "ws_error_samples": st.ws_error_samples,
        "delivery_latency_ms": {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": pct(lat, 1.0)},
        "publish_latency_ms": {"p50": pct(plat, 0.5), "p99": pct(plat, 0.99), "max": pct(plat, 1.0)},
        "publish_rate_target": a.pub_rate,
    }
    with open(a.result, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("samples")}))


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = False
    for l in lines[1:]:
        if ":" in l:
            n, v = l.split(":", 1)
            n = n.strip().lower()
            if n == "content-length":
                length = int(v.strip())
            elif n == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
    body = b""
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size + 2)
    elif length:
        body = await reader.readexactly(length)
    return status, body


# --------------------------------------------------------------------------- process sampling


def read_proc(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "RssAnon"):
                vals[k] = int(v.split()[0])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = int(parts[11]) + int(parts[12])  # utime + stime
    return vals, fds, ticks


def sample_main(a):
    hz = os.sysconf("SC_CLK_TCK")
    stop = {"v": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("v", True))
    t0 = time.time()
    deadline = t0 + a.duration
    last_ticks = None
    last_t = None
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "t_s", "rss_kb", "rss_anon_kb", "hwm_kb", "fds", "threads", "cpu_pct"])
        k = 0
        while not stop["v"] and time.time() <= deadline:
            target = t0 + k * a.interval
            if target > time.time():
                time.sleep(target - time.time())
                if stop["v"]:
                    break
            k += 1
            try:
                vals, fds, ticks = read_proc(a.pid)
            except (FileNotFoundError, ProcessLookupError):
                print("sample: process gone", file=sys.stderr)
                break
            now = time.time()
            cpu = "" if last_ticks is None else round(100.0 * (ticks - last_ticks) / hz / (now - last_t), 1)
            last_ticks, last_t = ticks, now
            w.writerow([round(now, 3), round(now - t0, 1), vals.get("VmRSS"), vals.get("RssAnon"),
                        vals.get("VmHWM"), fds, vals.get("Threads"), cpu])
            f.flush()


# --------------------------------------------------------------------------- report


def load_h2load_log(paths):
    """h2load --log-file: start time (us since epoch) TAB status TAB duration (us), one request a line."""
    starts, oks, durations = [], [], []
    for p in paths:
        try:
            with open(p) as f:
                for line in f:
                    parts = line.split("\t")
                    if len(parts) < 3:
                        continue
                    try:
                        t = int(parts[0]) / 1e6
                        s = int(parts[1])
                        d = int(parts[2]) / 1e3
                    except ValueError:
                        continue
                    starts.append(t)
                    oks.append(1 if 200 <= s < 400 else 0)
                    durations.append(d)
        except FileNotFoundError:
            pass
    order = sorted(range(len(starts)), key=starts.__getitem__)
    return [starts[i] for i in order], [oks[i] for i in order], [durations[i] for i in order]


def parse_h2load_summary(path):
    """The totals h2load prints at the end (requests, status classes, failures, achieved req/s)."""
    out = {}
    try:
        text = open(path).read()
    except FileNotFoundError:
        return out
    import re
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    if m:
        out["seconds"], out["req_per_s"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    if m:
        keys = ["total", "started", "done", "succeeded", "failed", "errored", "timeout"]
        out.update({k: int(v) for k, v in zip(keys, m.groups())})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out.update({k: int(v) for k, v in zip(["s2xx", "s3xx", "s4xx", "s5xx"], m.groups())})
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        out["latency_min_max_mean_sd"] = list(m.groups())
    return out


def median(v):
    return statistics.median(v) if v else None


def slope_per_min(ts, ys):
    n = len(ts)
    if n < 2:
        return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    den = sum((t - mt) ** 2 for t in ts)
    if den == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den * 60.0


def report_main(a):
    out = a.out
    meta = json.load(open(os.path.join(out, "meta.json")))
    rows = list(csv.DictReader(open(os.path.join(out, "samples-raw.csv"))))
    if not rows:
        print("report: no samples", file=sys.stderr)
        return 2
    # samples taken once the load processes have ended (a last one at t = duration) are not steady state
    rows = [r for r in rows if float(r["t_s"]) < float(meta.get("duration", 1e12)) - 0.5] or rows
    for r in rows:
        for k in ("epoch", "t_s"):
            r[k] = float(r[k])
        for k in ("rss_kb", "rss_anon_kb", "hwm_kb", "fds", "threads"):
            r[k] = int(r[k]) if r[k] not in ("", "None") else None
    starts, oks, _ = load_h2load_log(sorted(glob.glob(os.path.join(out, "h2load-*.log"))))
    relay_lines = []
    if os.path.exists(os.path.join(out, "relay-stats.jsonl")):
        relay_lines = [json.loads(l) for l in open(os.path.join(out, "relay-stats.jsonl")) if l.strip()]
    relay_t = [x["t"] for x in relay_lines]

    def relay_at(t):
        i = bisect.bisect_right(relay_t, t) - 1
        return relay_lines[i] if i >= 0 else None

    merged = []
    prev_epoch = None
    prev_relay = relay_at(rows[0]["epoch"] - float(meta.get("interval", 5)))
    for r in rows:
        e = r["epoch"]
        lo = prev_epoch if prev_epoch is not None else e - 5
        i0, i1 = bisect.bisect_left(starts, lo), bisect.bisect_left(starts, e)
        n = i1 - i0
        ok = sum(oks[i0:i1])
        span = max(0.001, e - lo)
        rel = relay_at(e)
        d = {
            "t_s": r["t_s"], "rss_kb": r["rss_kb"], "rss_anon_kb": r["rss_anon_kb"], "fds": r["fds"],
            "threads": r["threads"], "cpu_pct": r["cpu_pct"],
            "http_req_per_s": round(n / span, 1), "http_errors": n - ok,
        }
        if rel:
            pr = prev_relay or {"published": 0, "delivered": 0, "pub_errors": 0}
            dt = max(0.001, rel["t"] - pr["t"]) if prev_relay else float(meta.get("interval", 5))
            d.update({
                "pub_per_s": round((rel["published"] - pr["published"]) / dt, 1),
                "pub_errors_total": rel["pub_errors"],
                "deliveries_per_s": round((rel["delivered"] - pr["delivered"]) / dt, 1),
                "ws_connected": rel["connected"], "ws_reconnects_total": rel["reconnects"],
                "ws_errors_total": rel["ws_errors"],
            })
            prev_relay = rel
        else:
            d.update({"pub_per_s": "", "pub_errors_total": "", "deliveries_per_s": "", "ws_connected": "",
                      "ws_reconnects_total": "", "ws_errors_total": ""})
        merged.append(d)
        prev_epoch = e
    csv_path = os.path.join(out, "soak.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(merged[0].keys()))
        w.writeheader()
        w.writerows(merged)

    warm = a.warmup
    post = [r for r in merged if r["t_s"] >= warm and r["rss_kb"] is not None]
    if len(post) < 3:
        post = merged[-3:]
    # values at warm-up end / at the end: medians of three samples (15 s) to damp allocator noise
    w_rows, e_rows = post[:3], post[-3:]
    rss_w, rss_e = median([r["rss_kb"] for r in w_rows]), median([r["rss_kb"] for r in e_rows])
    fd_w, fd_e = median([r["fds"] for r in w_rows]), median([r["fds"] for r in e_rows])
    th_w, th_e = median([r["threads"] for r in w_rows]), median([r["threads"] for r in e_rows])
    ts = [r["t_s"] for r in post]
    rss_slope = slope_per_min(ts, [r["rss_kb"] for r in post])
    anon_slope = slope_per_min(ts, [r["rss_anon_kb"] or 0 for r in post])
    fd_slope = slope_per_min(ts, [r["fds"] for r in post])
    growth_kb = rss_e - rss_w
    growth_pct = 100.0 * growth_kb / rss_w if rss_w else 0.0
    rss_max = max(r["rss_kb"] for r in post)

    h2 = {k: parse_h2load_summary(os.path.join(out, f"h2load-{k}.txt")) for k in meta.get("h2load_kinds", [])}
    http_total = sum(x.get("total", 0) for x in h2.values())
    http_ok = sum(x.get("s2xx", 0) + x.get("s3xx", 0) for x in h2.values())
    http_err = http_total - http_ok if http_total else 0
    relay = {}
    rp = os.path.join(out, "relay-result.json")
    if os.path.exists(rp):
        relay = json.load(open(rp))
    pub_total = relay.get("published", 0) + relay.get("pub_errors", 0)
    pub_err = relay.get("pub_errors", 0)
    all_total = http_total + pub_total
    all_err = http_err + pub_err
    err_rate = 100.0 * all_err / all_total if all_total else 0.0
    missing = relay.get("expected_deliveries", 0) - relay.get("delivered", 0) if relay else 0

    failures = []
    if growth_kb > a.rss_max_growth_kb:
        failures.append(f"RSS grew {growth_kb/1024:.1f} MB after warm-up (limit {a.rss_max_growth_kb/1024:.1f} MB)")
    if growth_pct > a.rss_max_growth_pct:
        failures.append(f"RSS grew {growth_pct:.1f}% after warm-up (limit {a.rss_max_growth_pct}%)")
    if fd_e - fd_w > a.fd_slack:
        failures.append(f"open fds grew {fd_w:.0f} -> {fd_e:.0f} (slack {a.fd_slack})")
    if err_rate > a.max_error_pct:
        failures.append(f"error rate {err_rate:.3f}% > {a.max_error_pct}%")
    if relay and relay.get("expected_deliveries", 0) and missing > a.max_error_pct / 100 * relay["expected_deliveries"]:
        failures.append(f"{missing} of {relay['expected_deliveries']} relay deliveries missing")

    # ---- PNG
    png = os.path.join(out, "soak.png")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
        t = [r["t_s"] for r in merged]
        axes[0].plot(t, [r["rss_kb"] / 1024 for r in merged], label="VmRSS", color="tab:blue")
        axes[0].plot(t, [(r["rss_anon_kb"] or 0) / 1024 for r in merged], label="RssAnon", color="tab:cyan", lw=0.8)
        axes[0].axvline(warm, color="grey", ls="--", lw=0.8)
        axes[0].set_ylabel("MB")
        axes[0].set_title(f"gateway RSS (post-warm-up slope {rss_slope:+.0f} KB/min)")
        axes[0].legend(loc="lower right")
        axes[0].grid(alpha=0.3)
        axes[1].plot(t, [r["fds"] for r in merged], label="open fds", color="tab:orange")
        axes[1].plot(t, [r["threads"] for r in merged], label="threads", color="tab:green")
        axes[1].axvline(warm, color="grey", ls="--", lw=0.8)
        axes[1].set_title(f"open file descriptors (slope {fd_slope:+.2f}/min) and threads")
        axes[1].legend(loc="lower right")
        axes[1].grid(alpha=0.3)
        axes[2].plot(t, [r["http_req_per_s"] for r in merged], label="HTTP req/s (proxy+JWT)", color="tab:purple")
        if relay_lines:
            axes[2].plot(t, [r["deliveries_per_s"] if r["deliveries_per_s"] != "" else 0 for r in merged],
                         label="relay deliveries/s", color="tab:red", lw=0.8)
        axes[2].set_xlabel("seconds since soak start")
        axes[2].set_title("achieved load")
        axes[2].legend(loc="lower right")
        axes[2].grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
    except ImportError:
        png = None
        print("report: matplotlib not installed (pip install matplotlib); no PNG", file=sys.stderr)

    # ---- summary.md
    L = []
    L.append(f"# Soak summary ({'PASS' if not failures else 'FAIL'})\n")
    L.append(f"- binary: `{meta.get('binary')}` (commit {meta.get('commit', '?')}), traffic: {meta.get('mix')}")
    L.append(f"- duration {meta.get('duration')} s, warm-up {warm} s, samples every {meta.get('interval')} s "
             f"({len(merged)} samples)")
    if meta.get("capacity_rps"):
        L.append(f"- capacity (wrk, {meta.get('capacity_seconds')} s, mixed proxy+JWT): "
                 f"{meta['capacity_rps']:.0f} req/s; soak target {meta.get('target_rps')} req/s "
                 f"({meta.get('load_fraction')} of capacity)")
    L.append("")
    L.append("| | warm-up end | end | change |")
    L.append("|---|---|---|---|")
    L.append(f"| RSS (MB) | {rss_w/1024:.1f} | {rss_e/1024:.1f} | {growth_kb/1024:+.1f} MB ({growth_pct:+.1f}%) |")
    L.append(f"| open fds | {fd_w:.0f} | {fd_e:.0f} | {fd_e - fd_w:+.0f} |")
    L.append(f"| threads | {th_w:.0f} | {th_e:.0f} | {th_e - th_w:+.0f} |")
    L.append("")
    L.append(f"- RSS slope after warm-up: {rss_slope:+.1f} KB/min (RssAnon {anon_slope:+.1f} KB/min); "
             f"max RSS after warm-up {rss_max/1024:.1f} MB")
    L.append(f"- fd slope after warm-up: {fd_slope:+.2f} /min")
    for k, x in h2.items():
        if x:
            L.append(f"- HTTP {k}: {x.get('total', 0)} requests, {x.get('req_per_s', 0):.0f} req/s achieved, "
                     f"2xx {x.get('s2xx', 0)}, 4xx {x.get('s4xx', 0)}, 5xx {x.get('s5xx', 0)}, "
                     f"failed {x.get('failed', 0)}, errored {x.get('errored', 0)}, timeout {x.get('timeout', 0)}; "
                     f"latency min/max/mean/sd {'/'.join(x.get('latency_min_max_mean_sd', []))}")
    if relay:
        L.append(f"- relay: {relay['clients']} WebSocket clients on {relay['channels']} channels; "
                 f"published {relay['published']} (errors {relay['pub_errors']}, target {relay['publish_rate_target']}/s), "
                 f"deliveries received {relay['delivered']} vs expected (published x subscribers) "
                 f"{relay['expected_deliveries']} (missing {missing}, duplicates {relay['duplicates']}, "
                 f"recovered after churn {relay['recovered_pubs']}, failed recoveries {relay['recover_failed']})")
        L.append(f"- relay connections: {relay['connects']} connects, {relay['churned']} churned on purpose, "
                 f"{relay['reconnects']} reconnects, {relay['unexpected_closes']} unexpected closes, "
                 f"{relay['ws_errors']} errors; delivery latency ms p50/p99/max "
                 f"{relay['delivery_latency_ms']['p50']}/{relay['delivery_latency_ms']['p99']}/"
                 f"{relay['delivery_latency_ms']['max']}; publish latency ms p50/p99 "
                 f"{relay['publish_latency_ms']['p50']}/{relay['publish_latency_ms']['p99']}")
        if relay.get("ws_error_samples"):
            L.append(f"- relay error samples: {relay['ws_error_samples'][:5]}")
        if relay.get("pub_error_samples"):
            L.append(f"- publish error samples: {relay['pub_error_samples'][:5]}")
    L.append(f"- errors: {all_err} of {all_total} requests ({err_rate:.4f}%; limit {a.max_error_pct}%)")
    L.append(f"- thresholds: RSS growth <= {a.rss_max_growth_kb/1024:.0f} MB and <= {a.rss_max_growth_pct}%, "
             f"fd growth <= {a.fd_slack}, error rate <= {a.max_error_pct}%")
    L.append(f"- verdict: {'PASS' if not failures else 'FAIL: ' + '; '.join(failures)}")
    L.append(f"- files: `{csv_path}`" + (f", `{png}`" if png else ""))
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))
    return 1 if failures else 0


# --------------------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    r = sp.add_parser("relay")
    r.add_argument("--ws-url", required=True)
    r.add_argument("--api-host", default="127.0.0.1")
    r.add_argument("--api-port", type=int, required=True)
    r.add_argument("--api-path", default="/relay/api/publish")
    r.add_argument("--ws-token", required=True)
    r.add_argument("--api-token", required=True)
    r.add_argument("--namespace", default="soak")
    r.add_argument("--clients", type=int, default=200)
    r.add_argument("--channels", type=int, default=4)
    r.add_argument("--pub-rate", type=float, default=50)
    r.add_argument("--pub-conns", type=int, default=4, help="publisher connections (the rate is shared)")
    r.add_argument("--churn-interval", type=float, default=30)
    r.add_argument("--churn-count", type=int, default=10)
    r.add_argument("--duration", type=float, default=600, help="at most this long; SIGTERM ends it earlier")
    r.add_argument("--drain", type=float, default=3, help="seconds at the end without publishing")
    r.add_argument("--stats", required=True)
    r.add_argument("--result", required=True)
    s = sp.add_parser("sample")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--interval", type=float, default=5)
    s.add_argument("--duration", type=float, default=600)
    s.add_argument("--out", required=True)
    q = sp.add_parser("report")
    q.add_argument("--out", required=True, help="the soak's output folder")
    q.add_argument("--warmup", type=float, default=60)
    q.add_argument("--rss-max-growth-kb", type=float, default=8192)
    q.add_argument("--rss-max-growth-pct", type=float, default=10)
    q.add_argument("--fd-slack", type=int, default=16)
    q.add_argument("--max-error-pct", type=float, default=0.1)
    a = p.parse_args()
    if a.cmd == "relay":
        asyncio.run(relay_main(a))
    elif a.cmd == "sample":
        sample_main(a)
    else:
        sys.exit(report_main(a))


if __name__ == "__main__":
    main()
