"""Inbox search: trigram indexes for "message text contains" and partial customer numbers.

PostgreSQL only (pg_trgm); on SQLite (the embedded mode) this migration does nothing and searches scan.
Hand-written: when migrations are regenerated, keep this file (makemigrations does not produce it).
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # On UPPER(body): Django's icontains on PostgreSQL is UPPER(body) LIKE UPPER(%s).
    "CREATE INDEX IF NOT EXISTS message_body_trgm ON messaging_message USING gin (UPPER(body) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS conversation_customer_trgm ON messaging_conversation "
    "USING gin (customer_number gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS message_body_trgm",
    "DROP INDEX IF EXISTS conversation_customer_trgm",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("messaging", "0004_inbox")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
