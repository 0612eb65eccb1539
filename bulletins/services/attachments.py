"""Files attached to a bulletin: stored by their hash, images re-encoded, every download audited."""

import hashlib
import io

from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageOps

from bulletins.models import Attachment
from portal import audit

JPEG_QUALITY = 90
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


def without_metadata(upload, content_type):
    """The image of `upload` encoded again from its pixels alone: no EXIF (GPS position, camera,
    time), no comments, no text chunks. Turned the way the camera meant it first, since the
    orientation tag goes too; the colour profile stays (it says nothing about who or where)."""
    with Image.open(upload) as original:
        original.load()
        icc_profile = original.info.get("icc_profile")
        transparency = original.info.get("transparency")
        image = ImageOps.exif_transpose(original)
    image.info = {}
    options = {"icc_profile": icc_profile} if icc_profile else {}
    if content_type == "image/jpeg":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        options["quality"] = JPEG_QUALITY
    elif transparency is not None:
        options["transparency"] = transparency
    buffer = io.BytesIO()
    image.save(buffer, IMAGE_FORMATS[content_type], **options)
    upload.seek(0)
    return buffer.getvalue()


def _content(upload, content_type):
    if content_type in IMAGE_FORMATS:
        return without_metadata(upload, content_type)
    return b"".join(upload.chunks())


@transaction.atomic
def attach_files(bulletin, uploads, content_types, *, by, now):
    """Store checked uploads (see `forms.check_upload`) on a draft bulletin; images as
    `without_metadata` makes them."""
    attachments = []
    for upload, content_type in zip(uploads, content_types, strict=True):
        content = _content(upload, content_type)
        attachment = Attachment(
            bulletin=bulletin,
            name=upload.name[:200],
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_by=by,
            uploaded_at=now,
        )
        attachment.file.save(attachment.sha256, ContentFile(content), save=False)
        attachment.save()
        attachments.append(attachment)
        audit.record("attachment.add", by=by, obj=bulletin, now=now, name=attachment.name)
    return attachments


def record_download(attachment, *, by, request, now=None):
    """Audit that `by` downloaded `attachment`: every attachment, restricted bulletin or not."""
    bulletin = attachment.bulletin
    audit.record(
        "attachment.download", by=by, obj=bulletin, version=bulletin.version, now=now,
        request=request, name=attachment.name,
    )  # fmt: skip
