#!/usr/bin/env python3
"""Raw HTTP/1.1 request probes against Ethical Gateway and nginx, side by side.

Reads Tests/EthicalGatewayTests/Fixtures/request-probes.json (the table the Swift tests use) and
Tests/EthicalGatewayTests/Fixtures/probe-gateway.json, then for every probe:
  * sends its exact bytes on a fresh connection to the gateway (started here from --binary)
    and to nginx (Debian's, configured here to the same shape: /admin needs an Authorization
    header, everything proxied to an upstream over HTTP/1.1 keep-alive),
  * reads the responses (status codes in order) and whether the server closed the connection,
  * records the exact bytes each recording upstream received,
and prints a Markdown table plus whether the gateway met the fixture's expectations.

Standard library only. Every wait is bounded. Exit status: 0 when the gateway met every
expectation, 1 otherwise (2 on a set-up error).

  python3 scripts/security/probe-compare.py --binary .build/debug/ethical-gateway [--out FILE.md]
      [--nginx /usr/sbin/nginx | --no-nginx] [--only NAME ...] [--probes OTHER.json]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "EthicalGatewayTests", "Fixtures")

RESPONSE_TIMEOUT = 6.0   # longest wait for the expected responses
CLOSE_WAIT = 1.0         # after the expected responses: how long to wait to see a close
SETTLE = 0.3             # time for the upstream to receive what a proxy still forwards


# --------------------------------------------------------------------------- upstream
class RecordingUpstream:
    """Raw-socket HTTP/1.1 server: records every byte it receives, answers 200 per request."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.received = bytearray()
        self.request_lines = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.received = bytearray()
            self.request_lines = []

    def snapshot(self):
        with self.lock:
            return bytes(self.received), list(self.request_lines)

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        conn.settimeout(120)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                with self.lock:
                    self.received += data
                buf += data
                while True:
                    parsed = parse_request(buf)
                    if parsed is None:
                        break
                    if parsed == "bad":
                        with self.lock:
                            self.request_lines.append("(unparseable bytes)")
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        return
                    line, used, close = parsed
                    with self.lock:
                        self.request_lines.append(line)
                    buf = buf[used:]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                                 + (b"Connection: close\r\n" if close else b"") + b"\r\nok\n")
                    if close:
                        return
        except OSError:
            return
        finally:
            conn.close()


def parse_request(buf):
    """One request from buf: (request line, bytes used, close?) | None (incomplete) | 'bad'."""
    lead = len(buf) - len(buf.lstrip(b"\r\n"))
    m = re.compile(rb"\r?\n\r?\n").search(buf, lead)
    if not m:
        return None
    head = buf[lead:m.start()].decode("latin-1")
    return _body(buf, m.end(), re.split(r"\r?\n", head))


def _body(buf, start, lines):
    line = lines[0]
    headers = {}
    for h in lines[1:]:
        if ":" in h:
            k, v = h.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
    close = any("close" in v.lower() for v in headers.get("connection", []))
    if line.endswith("HTTP/1.0") and not any("keep-alive" in v.lower() for v in headers.get("connection", [])):
        close = True
    te = ",".join(headers.get("transfer-encoding", [])).lower()
    pos = start
    if "chunked" in te:
        while True:
            m = re.compile(rb"([0-9a-fA-F]+)[^\r\n]*\r?\n").match(buf, pos)
            if not m:
                return None if len(buf) - pos < 64 else "bad"
            size = int(m.group(1), 16)
            pos = m.end()
            if size == 0:
                # trailers up to an empty line
                while True:
                    m2 = re.compile(rb"([^\r\n]*)\r?\n").match(buf, pos)
                    if not m2:
                        return None
                    pos = m2.end()
                    if m2.group(1) == b"":
                        return line, pos, close
            if len(buf) < pos + size + 2:
                return None
            pos += size
            if buf[pos:pos + 2] == b"\r\n":
                pos += 2
            elif buf[pos:pos + 1] == b"\n":
                pos += 1
            else:
                return "bad"
    cl = headers.get("content-length", [])
    if cl:
        try:
            n = int(cl[0].split(",")[0])
        except ValueError:
            return "bad"
        if len(buf) < pos + n:
            return None
        pos += n
    return line, pos, close


# --------------------------------------------------------------------------- client
def parse_responses(buf):
    """Parse complete responses from buf: (statuses, rest, needs_close_to_end)."""
    statuses = []
    while True:
        m = re.search(rb"\r?\n\r?\n", buf)
        if not m:
            return statuses, buf, False
        head = buf[:m.start()].decode("latin-1")
        lines = re.split(r"\r?\n", head)
        sm = re.match(r"HTTP/\d\.\d (\d{3})", lines[0])
        if not sm:
            return statuses + ["garbage"], b"", False
        status = int(sm.group(1))
        headers = {}
        for h in lines[1:]:
            if ":" in h:
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        pos = m.end()
        if 100 <= status < 200 or status in (204, 304):
            rest = buf[pos:]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            done = False
            while True:
                cm = re.compile(rb"([0-9a-fA-F]+)[^\r\n]*\r\n").match(buf, pos)
                if not cm:
                    break
                size = int(cm.group(1), 16)
                pos = cm.end()
                if size == 0:
                    end = buf.find(b"\r\n\r\n", pos - 2)
                    if end < 0:
                        break
                    pos = end + 4
                    done = True
                    break
                if len(buf) < pos + size + 2:
                    break
                pos += size + 2
            if not done:
                return statuses, buf, False
            rest = buf[pos:]
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(buf) < pos + n:
                return statuses, buf, False
            rest = buf[pos + n:]
        else:
            # body until close
            return statuses + [status], b"", True
        if not (100 <= status < 200):
            statuses.append(status)
        buf = rest


def run_probe(port, data, n_expected):
    """Send data on a fresh connection; return dict(statuses, closed, note)."""
    result = {"statuses": [], "closed": False, "note": ""}
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError as e:
        result["note"] = f"connect failed: {e}"
        return result
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.sendall(data)
    except OSError as e:
        result["note"] = f"send: {e.strerror or e}"
    buf = b""
    until_close_body = False
    start = time.monotonic()
    close_deadline = start + RESPONSE_TIMEOUT if n_expected == 0 else None
    statuses = []
    while True:
        now = time.monotonic()
        if close_deadline is None and len(statuses) >= n_expected:
            close_deadline = now + CLOSE_WAIT
        end = min(start + RESPONSE_TIMEOUT, close_deadline or float("inf"))
        if now >= end:
            break
        s.settimeout(max(0.01, end - now))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            result["closed"] = True
            result["note"] = (result["note"] + " reset").strip()
            break
        except OSError as e:
            result["closed"] = True
            result["note"] = (result["note"] + f" {e}").strip()
            break
        if not chunk:
            result["closed"] = True
            break
        buf += chunk
        statuses, _, until_close_body = parse_responses(buf)
    parsed, rest, _ = parse_responses(buf)
    statuses = parsed
    if rest and not until_close_body:
        result["note"] = (result["note"] + f" +{len(rest)} unparsed bytes").strip()
    if not result["closed"] and len(statuses) < n_expected:
        result["note"] = (result["note"] + " timeout").strip()
    result["statuses"] = statuses
    s.close()
    return result


# --------------------------------------------------------------------------- servers
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def gateway_config(template_path, port, upstream_port):
    text = open(template_path).read()
    text = text.replace('"__PORT__"', str(port)).replace("__UPSTREAM_PORT__", str(upstream_port))
    return text


_starts = [0]


def start_gateway(binary, workdir, upstream_port, port=None):
    port = port or free_port()
    cfg = os.path.join(workdir, "probe-gateway.json")
    with open(cfg, "w") as f:
        f.write(gateway_config(os.path.join(FIXTURES, "probe-gateway.json"), port, upstream_port))
    _starts[0] += 1
    log = open(os.path.join(workdir, f"gateway-{_starts[0]}.log"), "w")
    proc = subprocess.Popen([binary, "run", "--config", cfg], stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
    if not wait_port(port, proc):
        stop(proc)
        sys.exit(f"error: the gateway did not listen on {port}; see {log.name}:\n" + open(log.name).read()[-3000:])
    return proc, port


NGINX_CONF = """worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream up {{ server 127.0.0.1:{up}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    server_name probe.test;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location /admin {{
      if ($http_authorization = "") {{ return 401; }}
      proxy_pass http://up;
    }}
    location / {{ proxy_pass http://up; }}
  }}
}}
"""


def start_nginx(nginx, workdir, upstream_port):
    port = free_port()
    d = os.path.join(workdir, "nginx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, up=upstream_port, port=port))
    log = open(os.path.join(d, "stderr.log"), "w")
    proc = subprocess.Popen([nginx, "-p", d, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    if not wait_port(port, proc, 15):
        stop(proc)
        sys.exit("error: nginx did not start:\n" + open(log.name).read()[-3000:])
    return proc, port


# --------------------------------------------------------------------------- report
def show_bytes(s, limit=60):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "|":
            out.append("\\|")
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o >= 0x7f:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    t = "".join(out)
    return t if len(t) <= limit else t[:limit] + "…"


def fmt_result(r):
    st = " ".join(str(x) for x in r["statuses"]) or "none"
    s = f"{st}, {'closed' if r['closed'] else 'open'}"
    if r["note"]:
        s += f" ({r['note']})"
    return s


def fmt_lines(lines):
    if not lines:
        return "—"
    return "<br>".join("`" + show_bytes(l).replace("`", "'") + "`" for l in lines[:4]) + \
        (f"<br>+{len(lines) - 4} more" if len(lines) > 4 else "")


def check(probe, r, received):
    problems = []
    if r["statuses"] != probe["expectStatuses"]:
        problems.append(f"statuses {r['statuses']} != {probe['expectStatuses']}")
    if r["closed"] != probe["expectClose"]:
        problems.append("closed" if r["closed"] else "left open")
    for s in probe["upstreamMustSee"]:
        if s.encode("latin-1") not in received:
            problems.append(f"upstream missed {show_bytes(s, 30)!s}")
    for s in probe["upstreamMustNotSee"]:
        if s.encode("latin-1") in received:
            problems.append(f"upstream saw {show_bytes(s, 30)!s}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "ethical-gateway"))
    ap.add_argument("--probes", default=os.path.join(FIXTURES, "request-probes.json"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--no-gateway", action="store_true", help="nginx only (to check the probes themselves)")
    ap.add_argument("--only", nargs="*", help="probe names to run")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    args = ap.parse_args()

    probes = json.load(open(args.probes))["probes"]
    if args.only:
        probes = [p for p in probes if p["name"] in args.only]
    work = tempfile.mkdtemp(prefix="probe-compare-")
    gw_up, ng_up = RecordingUpstream(), RecordingUpstream()
    gw = ng = None
    rows = []
    failures = []
    try:
        if not args.no_gateway:
            gw, gw_port = start_gateway(os.path.abspath(args.binary), work, gw_up.port)
        use_nginx = not args.no_nginx and os.path.exists(args.nginx)
        if use_nginx:
            ng, ng_port = start_nginx(args.nginx, work, ng_up.port)
        for p in probes:
            data = p["send"].encode("latin-1")
            n = len(p["expectStatuses"])
            if gw is not None and gw.poll() is not None:
                gw, gw_port = start_gateway(os.path.abspath(args.binary), work, gw_up.port, gw_port)
            if gw is not None:
                gw_up.reset()
                r = run_probe(gw_port, data, n)
                time.sleep(SETTLE)
                received, lines = gw_up.snapshot()
                problems = check(p, r, received)
                if gw.poll() is not None:
                    problems.append(f"GATEWAY CRASHED (log: gateway-{_starts[0]}.log)")
            else:
                r, lines, problems = {"statuses": [], "closed": False, "note": "not run"}, [], ["not run"]
            if problems:
                failures.append((p["name"], problems))
            nr, nlines = None, []
            if use_nginx:
                ng_up.reset()
                nr = run_probe(ng_port, data, n)
                time.sleep(SETTLE)
                _, nlines = ng_up.snapshot()
            rows.append((p, r, lines, problems, nr, nlines))
            print(f"{p['name']}: {'ok' if not problems else 'FAIL ' + '; '.join(problems)}", file=sys.stderr)
    finally:
        stop(gw)
        stop(ng)
        gw_up.stop()
        ng_up.stop()

    nginx_version = ""
    if not args.no_nginx and os.path.exists(args.nginx):
        nginx_version = subprocess.run([args.nginx, "-v"], capture_output=True, text=True).stderr.strip()
    out = []
    out.append(f"Probes: {len(rows)} from `{os.path.relpath(args.probes, ROOT)}`; gateway `{args.binary}`"
               + (f"; {nginx_version}" if nginx_version else "") + f"; run {datetime.datetime.now().isoformat(timespec='seconds')}.")
    out.append("")
    out.append(f"Gateway met the expectations of {len(rows) - len(failures)} of {len(rows)} probes.")
    out.append("")
    out.append("| probe | expected | gateway | gateway's upstream saw | gateway met? | nginx | nginx's upstream saw |")
    out.append("|---|---|---|---|---|---|---|")
    for p, r, lines, problems, nr, nlines in rows:
        exp = (" ".join(str(s) for s in p["expectStatuses"]) or "none") + (", closed" if p["expectClose"] else ", open")
        met = "yes" if not problems else "**NO**: " + "; ".join(problems)
        out.append(f"| {p['name']} | {exp} | {fmt_result(r)} | {fmt_lines(lines)} | {met} | "
                   f"{fmt_result(nr) if nr else 'not run'} | {fmt_lines(nlines) if nr else ''} |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(f"work directory (gateway and nginx logs): {work}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
