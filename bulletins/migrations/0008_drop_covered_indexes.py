# The single-column indexes of Receipt.user and Recipient.unit repeat the leading column of a
# composite key (Receipt: unique (user, version)) or serve no query (Recipient: always looked
# up by bulletin or person; by unit only through (bulletin, unit)). Each costs a write on every
# acknowledgement and on every row of a publication's fan-out.
#
# Only the indexes go: Django's own AlterField would also drop and re-add the foreign keys,
# which re-validates every row of two large tables under lock.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = [
    ("bulletins_receipt_user_id_f96d5bea", "bulletins_receipt", "user_id"),
    ("bulletins_recipient_unit_id_317d789b", "bulletins_recipient", "unit_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("bulletins", "0007_recipient_autovacuum"),
        ("portal", "0004_audit_sealed_after_commit"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="receipt",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="recipient",
                    name="unit",
                    field=models.ForeignKey(
                        db_index=False,
                        help_text="The person's unit when they were told.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.unit",
                    ),
                ),
            ],
        ),
    ]
