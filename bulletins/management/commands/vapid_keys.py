"""Print a new VAPID key pair for Web Push, as the environment lines to paste."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand


def _b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_pair():
    """(public, private): the uncompressed P-256 point browsers take as applicationServerKey,
    and the raw 32-byte private number; both base64url without padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(public), _b64(key.private_numbers().private_value.to_bytes(32, "big"))


class Command(BaseCommand):
    help = (
        "Print a new VAPID key pair (Web Push) as environment lines. Keep the private one secret."
    )

    def handle(self, *args, **options):
        public, private = new_pair()
        self.stdout.write(f"VAPID_PUBLIC_KEY={public}")
        self.stdout.write(f"VAPID_PRIVATE_KEY={private}")
        self.stdout.write("VAPID_SUBJECT=mailto:operations@your-agency.example")
