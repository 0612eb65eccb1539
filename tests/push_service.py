"""A local Web Push service for the tests: the outside world, and nothing else, stood in for.

A real HTTP/1.1 server on 127.0.0.1 in a thread. `subscribe()` makes a device the way a
browser does (its own P-256 key pair and auth secret) and returns the subscription JSON the
browser would give the page. Each POST is checked as a push service would: the VAPID JWT
(ES256 over the request's `k` key, which must be the portal's VAPID_PUBLIC_KEY; `aud` the
endpoint's origin; `exp` in the future and at most 24 h away; a `sub`), then the body is
DECRYPTED with the device's private key (RFC 8291 aes128gcm) and kept as JSON in `messages`.
`answers[token]` is a list of statuses to answer in turn (then 201), e.g. [503, 201] or [410].
"""

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    token: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class Message:
    token: str
    data: dict
    claims: dict
    headers: dict


@dataclass
class PushService:
    vapid_public_key: str
    devices: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (token, reason)
    answers: dict = field(default_factory=dict)
    connections: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with service.lock:
                    service.connections += 1

            def do_POST(self):  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = service.receive(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def subscribe(self):
        """A new device: the subscription JSON its browser would hand the page."""
        token = b64(os.urandom(12))
        device = Device(token, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.devices[token] = device
        public = device.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{token}",
            "keys": {"p256dh": b64(public), "auth": b64(device.auth)},
        }

    def to(self, subscription):
        """The messages delivered to one device."""
        token = subscription["endpoint"].rsplit("/", 1)[1]
        return [message.data for message in self.messages if message.token == token]

    def receive(self, path, headers, body):
        token = path.rsplit("/", 1)[1]
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            planned = self.answers.get(token) or []
            status = planned.pop(0) if planned else 201
        if status != 201:
            return status
        device = self.devices.get(token)
        if device is None:
            return 404
        try:
            claims = self.verify_vapid(headers.get("Authorization", ""))
            if headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in headers:
                raise ValueError("missing Content-Encoding or TTL")
            plain = http_ece.decrypt(
                body, private_key=device.key, auth_secret=device.auth, version="aes128gcm"
            )
            data = json.loads(plain)
        except Exception as error:  # noqa: BLE001 - a push service answers, it does not crash
            with self.lock:
                self.refused.append((token, f"{type(error).__name__}: {error}"))
            return 400
        with self.lock:
            self.messages.append(Message(token, data, claims, headers))
        return 201

    def verify_vapid(self, authorization):
        """The JWT's claims, once its ES256 signature, key, audience and expiry are checked."""
        scheme, _, params = authorization.partition(" ")
        parts = dict(part.strip().split("=", 1) for part in params.split(","))
        if scheme.lower() != "vapid" or parts.get("k") != self.vapid_public_key:
            raise ValueError("not signed with the portal's VAPID key")
        header_b64, claims_b64, signature_b64 = parts["t"].split(".")
        if json.loads(unb64(header_b64)) != {"typ": "JWT", "alg": "ES256"}:
            raise ValueError("not an ES256 JWT")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(parts["k"]))
        raw = unb64(signature_b64)
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        try:
            public.verify(
                signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature as error:
            raise ValueError("bad VAPID signature") from error
        claims = json.loads(unb64(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')} is not {self.origin}")
        if not time.time() < claims["exp"] <= time.time() + 24 * 3600:
            raise ValueError("exp not within the next 24 h")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("no sub")
        return claims
