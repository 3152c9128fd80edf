"""Which custom fields an organization's records of one type carry.

Custom fields are free-form (``CrmRecord.custom_fields``: name → value, set by the API and CSV imports), so
"the custom fields of leads" are the keys found on the organization's leads. The database lists them (one
indexed scan of the organization's rows), so nothing has to be kept in step.
"""

from __future__ import annotations

from django.db import connection

from crm.models import model_for

MAX_KEYS = 200


def custom_field_keys(org_id: int, record_type: str) -> list[str]:
    """The distinct custom field names on ``record_type`` records of the organization, sorted."""
    table = connection.ops.quote_name(model_for(record_type)._meta.db_table)
    fields = f"{table}.custom_fields"
    if connection.vendor == "postgresql":
        only_objects = f"CASE WHEN jsonb_typeof({fields}) = 'object' THEN {fields} ELSE '{{}}'::jsonb END"
        keys = f"jsonb_object_keys({only_objects})"
        sql = f"SELECT DISTINCT k FROM {table}, {keys} AS k WHERE {table}.organization_id = %s ORDER BY k"
    else:
        keys = f"json_each(CASE WHEN json_type({fields}) = 'object' THEN {fields} ELSE '{{}}' END)"
        sql = f"SELECT DISTINCT j.key FROM {table}, {keys} AS j WHERE {table}.organization_id = %s ORDER BY 1"
    sql += f" LIMIT {MAX_KEYS}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [org_id])
        return [row[0] for row in cursor.fetchall()]
