"""Autovacuum settings for the recipient table, the one that grows by a whole agency at once.

With the defaults (analyze after 10% of the table changed, vacuum after 20%), a table holding
50 agency-wide bulletins (1.8 million rows) is analyzed only after about five more: the planner
has no statistics for the bulletin everyone is reading right now, and the dead rows left by a
shift change's acknowledgements stay until far more pile up. Here: analyze after 10,000 changed
rows and vacuum after 20,000 dead ones, whatever the table's size. PostgreSQL only.
"""

from django.db import migrations

TABLE = "bulletins_recipient"
OPTIONS = {
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "10000",
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "20000",
}


def set_options(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        pairs = ", ".join(f"{name} = {value}" for name, value in OPTIONS.items())
        schema_editor.execute(f"ALTER TABLE {TABLE} SET ({pairs})")


def reset_options(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET ({', '.join(OPTIONS)})")


class Migration(migrations.Migration):
    dependencies = [("bulletins", "0006_agency_scale")]

    operations = [migrations.RunPython(set_options, reset_options, elidable=False)]
