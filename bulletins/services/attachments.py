import hashlib

from django.db import transaction

from bulletins.models import Attachment
from portal import audit


@transaction.atomic
def attach_files(bulletin, uploads, content_types, *, by, now):
    """Store checked uploads (see `forms.check_upload`) on a draft bulletin."""
    attachments = []
    for upload, content_type in zip(uploads, content_types, strict=True):
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        attachment = Attachment(
            bulletin=bulletin,
            name=upload.name[:200],
            content_type=content_type,
            size=upload.size,
            sha256=digest.hexdigest(),
            uploaded_by=by,
            uploaded_at=now,
        )
        attachment.file.save(attachment.sha256, upload, save=False)
        attachment.save()
        attachments.append(attachment)
        audit.record("attachment.add", by=by, obj=bulletin, now=now, name=attachment.name)
    return attachments
