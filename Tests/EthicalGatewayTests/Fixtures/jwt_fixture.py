#!/usr/bin/env python3
"""Token minting and a JWKS server for the auth tests, with PyJWT (independent of jwt-kit).

  jwt_fixture.py keys DIR
      Makes rsa, rsa2, ec256, ec384, ec521, ed25519 private keys (DIR/<name>.pem) and prints the public
      JWKs as JSON: {"rsa": {...}, ...}, each with "kid" = name and no "alg".
  jwt_fixture.py mint DIR  < specs.json
      specs: [{"key": "rsa" | "secret:<base64url>" | "none", "alg": "RS256", "headers": {...},
      "claims": {...}}]; prints one token per line. The "kid" header defaults to the key name.
  jwt_fixture.py forge DIR  < specs.json
      Hand-built tokens for the attack corpus; prints one token per line. Each spec has the header
      as "header" (an object) or "headerJSON" (exact text, e.g. with a member twice), the payload as
      "claims" or "claimsJSON", and "sign", one of:
        {"key": "rsa", "alg": "RS256", "form": "raw" | "der"}  a lab key (ES signatures as R||S,
            or DER with "form": "der");
        {"hmac": "pem" | "pem-nonl" | "der" | "text", "key": "rsa", "text": "...", "alg": "HS256"}
            HMAC with a public key's bytes as the secret (the algorithm confusion attack): the
            SubjectPublicKeyInfo PEM (with or without its final newline), its DER, or "text" as is;
        {"attacker": "jwk" | "x5c" | "plain", "alg": "RS256"}  a fresh attacker RSA key, put in the
            header as "jwk" or as a self-signed chain in "x5c" ("plain": not put anywhere);
        {"raw": "<hex>"}  these signature bytes; {"none": true}  an empty signature.
      "truncate": n drops the signature's last n bytes, "append": "<hex>" adds bytes to it.
      "awkward": true adds a claim "x" sized so the payload's base64url has "-" and "_" and
      needs padding (for re-encoding attacks).
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


def compact_json(value):
    return json.dumps(value, separators=(",", ":"))


def attacker_chain(key):
    """A self-signed attacker CA and a leaf it signs for `key`, as x5c (standard base64 DER)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() for cert in (leaf, ca)]


def sign_with(key, alg, data, form="raw"):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[-3:])
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), digest)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
    if alg.startswith("ES"):
        der = key.sign(data, ec.ECDSA(digest))
        if form == "der":
            return der
        size = (key.curve.key_size + 7) // 8
        r, s = decode_dss_signature(der)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return key.sign(data)
    raise ValueError("cannot sign " + alg)


def forge(directory, specs):
    for spec in specs:
        header = spec.get("header", {})
        claims = spec.get("claims", {})
        sign = spec["sign"]
        attacker = None
        if "attacker" in sign:
            attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if sign["attacker"] == "jwk":
                header = dict(header, jwk=public_jwk("attacker", attacker))
            elif sign["attacker"] == "x5c":
                header = dict(header, x5c=attacker_chain(attacker))
        if spec.get("awkward"):
            # Bytes "?>" encode to "/" and "+" in base64 wherever they fall: "_" and "-" in base64url.
            filler = "?>?>?>?>?>?>"
            while True:
                encoded = b64(compact_json(dict(claims, x=filler)).encode())
                if "-" in encoded and "_" in encoded and len(encoded) % 4 != 0:
                    break
                filler += "a"
            claims = dict(claims, x=filler)
        header_text = spec["headerJSON"] if "headerJSON" in spec else compact_json(header)
        claims_text = spec["claimsJSON"] if "claimsJSON" in spec else compact_json(claims)
        signing_input = (b64(header_text.encode()) + "." + b64(claims_text.encode())).encode()
        if "key" in sign and "hmac" not in sign:
            with open(os.path.join(directory, sign["key"] + ".pem"), "rb") as handle:
                key = serialization.load_pem_private_key(handle.read(), password=None)
            signature = sign_with(key, sign["alg"], signing_input, sign.get("form", "raw"))
        elif "hmac" in sign:
            form = sign["hmac"]
            if form == "text":
                secret = sign["text"].encode()
            else:
                with open(os.path.join(directory, sign["key"] + ".pub.pem"), "rb") as handle:
                    pem = handle.read()
                if form == "pem":
                    secret = pem
                elif form == "pem-nonl":
                    secret = pem.rstrip(b"\n")
                else:
                    secret = serialization.load_pem_public_key(pem).public_bytes(
                        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[sign["alg"]]
            signature = hmac.new(secret, signing_input, digest).digest()
        elif attacker is not None:
            signature = sign_with(attacker, sign["alg"], signing_input)
        elif "raw" in sign:
            signature = bytes.fromhex(sign["raw"])
        else:
            signature = b""
        if spec.get("truncate"):
            signature = signature[: -spec["truncate"]]
        signature += bytes.fromhex(spec.get("append", ""))
        print(signing_input.decode() + "." + b64(signature))


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
    elif command == "forge":
        forge(sys.argv[2], json.load(sys.stdin))
    elif command == "serve":
        serve(*sys.argv[2:5])
