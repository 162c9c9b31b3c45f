"""On PostgreSQL, a billed time entry or expense may go back to approved when a credit note releases it for
rebilling, and in no other way.

``0008_locked_entries_guard`` refuses every change to a billed entry. This replaces its trigger function with
one that allows exactly one more UPDATE: billed → approved with the invoice reference cleared ('') and the
billed time cleared (NULL), ``updated_at`` with them, every other column unchanged. That is what
``projects.timesheets.time_entries_release_billed`` writes; everything else stays refused as before
(changing a billed entry's content or reference, any other status, deleting approved or billed entries,
approved → anything but billed with the content unchanged). The triggers themselves stay as ``0008`` made them.
"""

import importlib

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION throughline_entry_locked() RETURNS trigger AS $$
DECLARE
    moving CONSTANT text[] := ARRAY['status', 'invoice_ref', 'billed_at', 'updated_at'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status IN ('approved', 'billed') THEN
            RAISE EXCEPTION '% % is %: it is never deleted', TG_TABLE_NAME, OLD.public_id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'billed' AND NEW.status = 'approved' AND NEW.invoice_ref = '' AND NEW.billed_at IS NULL
       AND (to_jsonb(OLD) - moving) = (to_jsonb(NEW) - moving) THEN
        RETURN NEW;  -- released by a credit note for rebilling
    END IF;
    IF OLD.status = 'billed'
       OR (OLD.status = 'approved' AND (
            NEW.status <> 'billed' OR (to_jsonb(OLD) - moving) IS DISTINCT FROM (to_jsonb(NEW) - moving))) THEN
        RAISE EXCEPTION '% % is %: it is locked (correct it with an adjustment)', TG_TABLE_NAME, OLD.public_id,
            OLD.status USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def replace(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)


def restore(apps, schema_editor):
    """Back to the function of 0008: billed entries never change again (entries released meanwhile stay
    approved: the function judges writes, not rows)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    previous = importlib.import_module("projects.migrations.0008_locked_entries_guard")
    schema_editor.execute(previous.FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("projects", "0008_locked_entries_guard")]

    operations = [migrations.RunPython(replace, restore)]
