#!/usr/bin/env python3
"""Token minting and a JWKS server for the auth tests, with PyJWT (independent of jwt-kit).

  jwt_fixture.py keys DIR
      Makes rsa, rsa2, ec256, ec384, ec521, ed25519 private keys (DIR/<name>.pem) and prints the public
      JWKs as JSON: {"rsa": {...}, ...}, each with "kid" = name and no "alg".
  jwt_fixture.py mint DIR  < specs.json
      specs: [{"key": "rsa" | "secret:<base64url>" | "none", "alg": "RS256", "headers": {...},
      "claims": {...}}]; prints one token per line. The "kid" header defaults to the key name.
  jwt_fixture.py serve DIR CERT KEY
      HTTPS on 127.0.0.1: GET /<path> answers DIR/<path> (read per request; 404 when absent)
      with Cache-Control from DIR/cache-control (default max-age=300); every request's path is
      appended to DIR/requests.log. Prints "PORT <n>" once listening.
      POST /introspect (RFC 7662): needs "Authorization: Basic" with DIR/introspect-client
      ("id:secret"); answers DIR/introspect.json[token], or {"active": false}.
"""
import base64
import hashlib
import hmac
import json
import os
import ssl
import urllib.parse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(length, "big"))


def public_jwk(name, key):
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "kid": name, "use": "sig", "n": int_b64(numbers.n), "e": int_b64(numbers.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        numbers = public.public_numbers()
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        return {"kty": "EC", "kid": name, "crv": crv, "x": int_b64(numbers.x, size), "y": int_b64(numbers.y, size)}
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "kid": name, "crv": "Ed25519", "x": b64(raw)}


def make_keys(directory):
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ec521": ec.generate_private_key(ec.SECP521R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    out = {}
    for name, key in keys.items():
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with open(os.path.join(directory, name + ".pem"), "wb") as handle:
            handle.write(pem)
        out[name] = public_jwk(name, key)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with open(os.path.join(directory, name + ".pub.pem"), "wb") as handle:
            handle.write(public_pem)
    print(json.dumps(out))


def mint(directory, specs):
    for spec in specs:
        key_name = spec["key"]
        headers = {"kid": key_name}
        headers.update(spec.get("headers", {}))
        headers = {k: v for k, v in headers.items() if v is not None}
        claims = spec.get("claims", {})
        alg = spec["alg"]
        if key_name == "none":
            header = b64(json.dumps(dict(headers, alg=alg, typ="JWT")).encode())
            print(header + "." + b64(json.dumps(claims).encode()) + ".")
            continue
        if key_name.startswith("secret:"):
            key = base64.urlsafe_b64decode(key_name[7:] + "=" * (-len(key_name[7:]) % 4))
            headers = {k: v for k, v in spec.get("headers", {}).items() if v is not None}
        elif key_name.startswith("raw:"):
            # A raw HMAC secret given as text, e.g. an RSA public key PEM (the confusion attack).
            key = open(os.path.join(directory, key_name[4:]), "rb").read()
            headers = {k: v for k, v in spec.get("headers", {}).items() if v is not None}
        else:
            with open(os.path.join(directory, key_name + ".pem"), "rb") as handle:
                key = serialization.load_pem_private_key(handle.read(), password=None)
        if key_name.startswith("raw:"):
            header = dict(headers, alg=alg, typ="JWT")
            signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
            signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
            print(signing_input + "." + b64(signature))
            continue
        print(jwt.encode(claims, key, algorithm=alg, headers=headers))


class Handler(BaseHTTPRequestHandler):
    directory = "."

    def do_GET(self):
        path = self.path.split("?")[0].lstrip("/")
        with open(os.path.join(self.directory, "requests.log"), "a") as log:
            log.write(path + "\n")
        file = os.path.join(self.directory, path)
        if ".." in path or not os.path.isfile(file):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = open(file, "rb").read()
        control = os.path.join(self.directory, "cache-control")
        cache = open(control).read().strip() if os.path.exists(control) else "max-age=300"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", cache)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        path = self.path.split("?")[0].lstrip("/")
        with open(os.path.join(self.directory, "requests.log"), "a") as log:
            log.write(path + "\n")
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        client = open(os.path.join(self.directory, "introspect-client")).read().strip()
        given = self.headers.get("Authorization", "")
        try:
            # RFC 6749 2.3.1: id and secret are form-encoded, then joined by ":" and base64-encoded.
            user, _, password = base64.b64decode(given[6:]).decode().partition(":")
            credentials = urllib.parse.unquote_plus(user) + ":" + urllib.parse.unquote_plus(password)
        except ValueError:
            credentials = None
        if path != "introspect" or not given.startswith("Basic ") or credentials != client:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answers = json.load(open(os.path.join(self.directory, "introspect.json")))
        body = json.dumps(answers.get(form.get("token", [""])[0], {"active": False})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(directory, cert, key):
    Handler.directory = directory
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "keys":
        make_keys(sys.argv[2])
    elif command == "mint":
        mint(sys.argv[2], json.load(sys.stdin))
    elif command == "serve":
        serve(*sys.argv[2:5])
