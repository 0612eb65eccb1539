# API tokens remember what they were issued against (issue 18, point 4): the owner's rights then
# (`capabilities`) and a fingerprint of their password hash and role (`owner_fingerprint`).
#
# Tokens made before this migration get a careful default, and the migration says so when it
# changes any: each becomes read-only, expires at most 90 days from now, keeps the capabilities
# of its owner's current role (not any extra group permissions), and is tied to the owner's
# current password and role. An owner who needs changes through the API makes a new token.

import hashlib
from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

MAX_LIFETIME = timedelta(days=90)
# portal.scope.ROLE_CAPABILITIES as of this migration.
ROLE_CAPABILITIES = {
    "officer": [],
    "supervisor": ["bulletins.author_bulletin", "bulletins.view_coverage"],
    "admin": [
        "bulletins.author_bulletin",
        "bulletins.view_coverage",
        "portal.manage_people",
        "portal.view_audit_trail",
    ],
    "auditor": ["portal.view_audit_trail"],
}


def fingerprint(user):
    state = f"{user.password}|{user.role}|{user.is_superuser}"
    return hashlib.sha256(state.encode()).hexdigest()


def give_existing_tokens_a_careful_default(apps, schema_editor):
    ApiToken = apps.get_model("bulletins", "ApiToken")
    now = timezone.now()
    latest_expiry = now + MAX_LIFETIME
    made_read_only = shortened = 0
    for token in ApiToken.objects.select_related("user").iterator():
        made_read_only += not token.is_read_only
        shortened += token.expires_at > latest_expiry
        token.is_read_only = True
        token.expires_at = min(token.expires_at, latest_expiry)
        token.capabilities = sorted(ROLE_CAPABILITIES.get(token.user.role, []))
        token.owner_fingerprint = fingerprint(token.user)
        token.save(
            update_fields=["is_read_only", "expires_at", "capabilities", "owner_fingerprint"]
        )
    if made_read_only or shortened:
        print(
            f"\n  API tokens made before this version: {made_read_only} made read-only, "
            f"{shortened} now expire within 90 days; all stop working if their owner's "
            "password or role changes. Owners make new tokens for changes."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("bulletins", "0008_drop_covered_indexes"),
        ("portal", "0002_security_baseline"),
    ]

    operations = [
        migrations.AlterField(
            model_name="apitoken",
            name="is_read_only",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="capabilities",
            field=models.JSONField(
                blank=True, default=list, help_text="The owner's permissions when it was made."
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="owner_fingerprint",
            field=models.CharField(
                default="",
                help_text="SHA-256 of the owner's password hash and role when it was made.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(give_existing_tokens_a_careful_default, migrations.RunPython.noop),
    ]
