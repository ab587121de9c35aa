#!/usr/bin/env python3
"""HTTP/2 request probes against Ethical Gateway's TLS listener (ALPN h2), expectations per RFC 9113 section 8.

Starts the gateway from --binary with the routes of Tests/EthicalGatewayTests/Fixtures/probe-gateway.json
(/admin behind the development issuer, everything else proxied) on a TLS listener (the gateway's
development certificate, or --cert/--key), runs a recording upstream (the one of probe-compare.py),
sends each probe on a fresh HTTP/2 connection with the `h2` package (its own header validation
turned off, so malformed field blocks go out as written), and prints a Markdown table:
expected vs got, and what reached the upstream. Exit status 1 when any expectation is unmet.

Outcomes: a status code ("400"), "reset:ERROR_NAME" (RST_STREAM), "goaway:ERROR_NAME" or "timeout".
A malformed request (RFC 9113 8.1.1) may be answered with a 400 before the stream is closed, or reset
with PROTOCOL_ERROR, or (5.4.1: any stream error may be treated as a connection error) end the
connection with GOAWAY(PROTOCOL_ERROR); and it MUST NOT be forwarded.

  pip install h2
  python3 scripts/security/h2-probes.py --binary .build/debug/ethical-gateway [--cert chain.pem --key key.pem]
"""
import argparse
import importlib.util
import json
import os
import socket
import ssl
import sys
import tempfile
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("probe_compare", os.path.join(HERE, "probe-compare.py"))
pc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pc)

MALFORMED = ("400", "reset:PROTOCOL_ERROR", "goaway:PROTOCOL_ERROR")


def h2_exchange(port, headers, data=(), timeout=6.0):
    """One request on a fresh h2 connection. Returns (outcome, response headers)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
    except (OSError, ssl.SSLError) as e:
        return f"error:{type(e).__name__}", []
    if tls.selected_alpn_protocol() != "h2":
        tls.close()
        return f"alpn:{tls.selected_alpn_protocol()}", []
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                    normalize_outbound_headers=False, validate_inbound_headers=False,
                                    split_outbound_cookies=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    sid = conn.get_next_available_stream_id()
    hdrs = [(k.encode("latin-1") if isinstance(k, str) else k, v.encode("latin-1") if isinstance(v, str) else v)
            for k, v in headers]
    try:
        conn.send_headers(sid, hdrs, end_stream=not data)
        for i, d in enumerate(data):
            conn.send_data(sid, d, end_stream=(i == len(data) - 1))
    except h2.exceptions.ProtocolError as e:
        tls.close()
        return f"client-refused:{e}", []
    tls.sendall(conn.data_to_send())
    outcome, resp_headers = None, []
    end = time.monotonic() + timeout
    try:
        while outcome is None or not outcome.startswith(("reset", "goaway", "done")):
            left = end - time.monotonic()
            if left <= 0:
                break
            tls.settimeout(left)
            try:
                chunk = tls.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                outcome = outcome or "closed"
                break
            try:
                events = conn.receive_data(chunk)
            except h2.exceptions.ProtocolError as e:
                outcome = outcome or f"client-protocol-error:{type(e).__name__}"
                break
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    resp_headers = ev.headers
                    status = dict(ev.headers).get(b":status", b"?").decode()
                    outcome = status
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    outcome = f"done:{outcome}"
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    if outcome is None:
                        outcome = f"reset:{h2.errors.ErrorCodes(ev.error_code).name}"
                    else:
                        outcome = f"done:{outcome}"
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    if outcome is None:
                        try:
                            name = h2.errors.ErrorCodes(ev.error_code).name
                        except ValueError:
                            name = str(ev.error_code)
                        outcome = f"goaway:{name}"
                    else:
                        outcome = f"done:{outcome}"
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
    except (ssl.SSLError, OSError) as e:
        outcome = outcome or f"error:{type(e).__name__}"
    finally:
        try:
            tls.close()
        except OSError:
            pass
    if outcome is None:
        return "timeout", resp_headers
    if outcome.startswith("done:"):
        outcome = outcome[5:]
    return outcome, resp_headers


def base(path="/public/h2", method="GET", authority="probe.test"):
    h = [(":method", method), (":scheme", "https"), (":path", path)]
    if authority is not None:
        h.append((":authority", authority))
    return h


def probes():
    P = []

    def add(name, why, headers, expect, data=(), see=(), notsee=(), notcomplete=()):
        P.append(dict(name=name, why=why, headers=headers, expect=tuple(expect), data=tuple(data),
                      see=tuple(see), notsee=tuple(notsee), notcomplete=tuple(notcomplete)))

    add("baseline-get", "control: proxied", base("/public/h2get"), ["200"], see=["GET /public/h2get "])
    add("baseline-admin-needs-token", "control: /admin without a token", base("/admin/x"), ["401"], notsee=["/admin"])
    add("baseline-post-body", "control: a body with a matching content-length",
        base("/public/h2post", "POST") + [("content-length", "5")], ["200"], data=[b"hello"],
        see=["POST /public/h2post ", "hello"])
    add("host-instead-of-authority", "8.3.1: a request may carry host instead of :authority",
        base("/public/h2host", authority=None) + [("host", "probe.test")], ["200"], see=["GET /public/h2host "])
    # content-length (8.1.1)
    add("content-length-more-than-data", "8.1.1: content-length 10 with 5 bytes of DATA is malformed; MUST NOT be forwarded",
        base("/public/h2cl1", "POST") + [("content-length", "10")], MALFORMED, data=[b"hello"],
        notcomplete=["/public/h2cl1"])
    add("content-length-less-than-data", "8.1.1: content-length 2 with 5 bytes of DATA is malformed",
        base("/public/h2cl2", "POST") + [("content-length", "2")], MALFORMED, data=[b"hello"],
        notcomplete=["/public/h2cl2"], notsee=["llo"])
    add("content-length-two-values", "two content-length fields that differ: malformed (RFC 9110 8.6)",
        base("/public/h2cl3", "POST") + [("content-length", "5"), ("content-length", "6")], MALFORMED, data=[b"hello"],
        notcomplete=["/public/h2cl3"])
    # connection-specific fields (8.2.2)
    add("transfer-encoding-chunked", "8.2.2: transfer-encoding is connection-specific: malformed, not forwarded (a forwarded TE+body is H2.TE smuggling)",
        base("/public/h2te", "POST") + [("transfer-encoding", "chunked")],
        MALFORMED, data=[b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: probe.test\r\n\r\n"],
        notsee=["/public/h2te", "/smuggled"])
    add("connection-header", "8.2.2: connection is connection-specific: malformed",
        base("/public/h2conn") + [("connection", "keep-alive")], MALFORMED, notsee=["/public/h2conn"])
    add("keep-alive-header", "8.2.2: keep-alive: malformed", base("/public/h2ka") + [("keep-alive", "timeout=5")],
        MALFORMED, notsee=["/public/h2ka"])
    add("proxy-connection-header", "8.2.2: proxy-connection: malformed", base("/public/h2pc") + [("proxy-connection", "keep-alive")],
        MALFORMED, notsee=["/public/h2pc"])
    add("upgrade-header", "8.2.2: upgrade: malformed (h2c smuggling through an HTTP/1.1 hop)",
        base("/public/h2up") + [("upgrade", "h2c")], MALFORMED, notsee=["/public/h2up", "h2c"])
    add("te-trailers-allowed", "8.2.2: te: trailers is the one allowed value", base("/public/h2tet") + [("te", "trailers")],
        ["200"], see=["GET /public/h2tet "])
    add("te-gzip", "8.2.2: te with a value other than trailers: malformed", base("/public/h2teg") + [("te", "gzip")],
        MALFORMED, notsee=["/public/h2teg"])
    # field validity (8.2.1)
    add("crlf-in-header-value", "8.2.1: CR LF in a value (header injection into the HTTP/1.1 hop): malformed",
        base("/public/h2crlf") + [("x-a", "a\r\nx-smuggled: 1")], MALFORMED, notsee=["x-smuggled", "/public/h2crlf"])
    add("cr-in-header-value", "8.2.1: CR in a value: malformed", base("/public/h2cr") + [("x-a", "a\rb")], MALFORMED,
        notsee=["/public/h2cr"])
    add("lf-in-header-value", "8.2.1: LF in a value: malformed", base("/public/h2lf") + [("x-a", "a\nx-smuggled: 1")], MALFORMED,
        notsee=["x-smuggled", "/public/h2lf"])
    add("nul-in-header-value", "8.2.1: NUL in a value: malformed", base("/public/h2nul") + [("x-a", "a\x00b")], MALFORMED,
        notsee=["/public/h2nul"])
    add("leading-space-in-value", "8.2.1: a value starting with SP: malformed", base("/public/h2sp") + [("x-a", " a")], MALFORMED,
        notsee=["/public/h2sp"])
    add("uppercase-header-name", "8.2.1: uppercase in a field name: malformed", base("/public/h2uc") + [("X-Upper", "1")],
        MALFORMED, notsee=["/public/h2uc"])
    add("space-in-header-name", "8.2.1: SP in a field name: malformed", base("/public/h2nsp") + [("x a", "1")], MALFORMED,
        notsee=["/public/h2nsp"])
    add("colon-in-header-name", "8.2.1: a colon in a regular field name: malformed", base("/public/h2col") + [("x:a", "1")],
        MALFORMED, notsee=["/public/h2col"])
    add("crlf-in-path", "8.2.1: CR LF in :path (request-line injection): malformed",
        base("/public/h2p\r\nx-smuggled: 1"), MALFORMED, notsee=["x-smuggled"])
    # pseudo-header fields (8.3)
    add("pseudo-after-regular", "8.3: a pseudo-header after a regular field: malformed",
        [(":method", "GET"), (":scheme", "https"), ("x-a", "1"), (":path", "/public/h2ord"), (":authority", "probe.test")],
        MALFORMED, notsee=["/public/h2ord"])
    add("duplicate-path", "8.3: :path twice: malformed",
        base("/public/h2dp1") + [(":path", "/admin/x")], MALFORMED, notsee=["/public/h2dp1", "/admin"])
    add("unknown-pseudo-header", "8.3: an undefined pseudo-header: malformed", base("/public/h2up2") + [(":foo", "bar")],
        MALFORMED, notsee=["/public/h2up2"])
    add("missing-method", "8.3.1: no :method: malformed",
        [(":scheme", "https"), (":path", "/public/h2nm"), (":authority", "probe.test")], MALFORMED, notsee=["/public/h2nm"])
    add("empty-path", "8.3.1: empty :path: malformed", base(""), MALFORMED)
    # host / :authority
    add("two-host-headers", "two host fields next to :authority (Host is a singleton, RFC 9110 7.2; RFC 9112 3.2 400 on HTTP/1.1): malformed",
        base("/public/h2hh") + [("host", "probe.test"), ("host", "admin.probe.test")], MALFORMED,
        notsee=["/public/h2hh"])
    add("two-host-headers-no-authority", "two host fields and no :authority: malformed",
        base("/public/h2hh2", authority=None) + [("host", "probe.test"), ("host", "admin.probe.test")], MALFORMED,
        notsee=["/public/h2hh2"])
    add("no-authority-no-host", "no :authority and no host for an https target: no authority to route on, 400 (RFC 9110 7.2 / 9113 8.3.1)",
        base("/public/h2nah", authority=None), MALFORMED, notsee=["/public/h2nah"])
    add("host-differs-from-authority", "8.3.1: a server SHOULD treat host differing from :authority as malformed, and MUST NOT use host for the target URI when :authority is present",
        base("/public/h2hd") + [("host", "other.test")], MALFORMED, notsee=["/public/h2hd", "other.test"])
    # :path bypasses of /admin, as the HTTP/1.1 fixture
    fixture = json.load(open(os.path.join(pc.FIXTURES, "request-probes.json")))["probes"]
    for p in fixture:
        if not p["name"].startswith("bypass-"):
            continue
        path = p["send"].split(" ")[1]
        add("path-" + p["name"], p["why"], base(path), [str(s) for s in p["expectStatuses"]],
            notsee=[path, "/admin", "dmin"])
    add("path-double-encoding", "%2561 decodes once to '%61': proxied, never as /admin", base("/%2561dmin/x"), ["200"],
        see=["GET /%2561dmin/x "], notsee=["/admin", "/%61dmin"])
    return P


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(pc.ROOT, ".build", "debug", "ethical-gateway"))
    ap.add_argument("--cert", help="PEM chain (leaf first) for the TLS listener; default: the development certificate")
    ap.add_argument("--key", help="PEM key for --cert")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="h2-probes-")
    up = pc.RecordingUpstream()
    port = pc.free_port()
    cfg = json.loads(pc.gateway_config(os.path.join(pc.FIXTURES, "probe-gateway.json"), port, up.port))
    cfg.pop("$schema", None)
    tls = {}
    if args.cert:
        tls = {"certificates": [{"certificateFile": os.path.abspath(args.cert), "keyFile": os.path.abspath(args.key)}]}
    cfg["listeners"] = [{"name": "probe-https", "address": "127.0.0.1", "port": port, "tls": tls}]
    cfg_path = os.path.join(work, "h2-gateway.json")
    json.dump(cfg, open(cfg_path, "w"), indent=1)
    import subprocess
    starts = [0]

    def start():
        starts[0] += 1
        log = open(os.path.join(work, f"gateway-{starts[0]}.log"), "w")
        proc = subprocess.Popen([os.path.abspath(args.binary), "run", "--config", cfg_path], stdout=log,
                                stderr=subprocess.STDOUT, cwd=work,
                                env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
        if not pc.wait_port(port, proc):
            pc.stop(proc)
            sys.exit("error: the gateway did not start:\n" + open(log.name).read()[-3000:])
        return proc

    rows, failures = [], 0
    gw = start()
    try:
        for p in probes():
            if gw.poll() is not None:
                gw = start()
            if args.only and p["name"] not in args.only:
                continue
            up.reset()
            got, _ = h2_exchange(port, p["headers"], p["data"])
            time.sleep(pc.SETTLE)
            received, lines = up.snapshot()
            problems = []
            if got not in p["expect"]:
                problems.append(f"got {got}")
            for s in p["see"]:
                if s.encode("latin-1") not in received:
                    problems.append(f"upstream missed {pc.show_bytes(s, 30)}")
            for s in p["notsee"]:
                if s.encode("latin-1") in received:
                    problems.append(f"upstream saw {pc.show_bytes(s, 30)}")
            for s in p["notcomplete"]:
                if any(s in l for l in lines):
                    problems.append(f"upstream got a complete request {s}")
            if gw.poll() is not None:
                problems.append(f"GATEWAY CRASHED (log: gateway-{starts[0]}.log)")
            failures += bool(problems)
            rows.append((p, got, lines, problems))
            print(f"{p['name']}: {'ok' if not problems else 'FAIL ' + '; '.join(problems)}", file=sys.stderr)
    finally:
        pc.stop(gw)
        up.stop()
    out = [f"HTTP/2 probes: {len(rows)}; gateway `{args.binary}`; unmet: {failures}.", "",
           "| probe | why | expected | got | upstream saw | met? |", "|---|---|---|---|---|---|"]
    for p, got, lines, problems in rows:
        out.append(f"| {p['name']} | {pc.show_bytes(p['why'], 400)} | {' or '.join(p['expect'])} | {got} | "
                   f"{pc.fmt_lines(lines)} | {'yes' if not problems else '**NO**: ' + '; '.join(problems)} |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        open(args.out, "w").write(text)
    print(f"work directory (gateway logs): {work}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
