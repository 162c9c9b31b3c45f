"""On PostgreSQL, approved and billed time entries and expenses are locked at the database level too.

An approved entry may only become billed (status, invoice reference and billed time change; nothing else);
a billed entry never changes; neither is ever deleted. The services refuse first, with a clear message;
this trigger is the backstop against any other writer (a shell, a script, a bug). Corrections are
adjustment entries, which are new rows.
"""

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

TABLES = ["projects_timeentry", "projects_expense"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_locked ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_locked BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION throughline_entry_locked()"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_locked ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS throughline_entry_locked()")


class Migration(migrations.Migration):
    dependencies = [("projects", "0007_acceptance_member_permissions")]

    operations = [migrations.RunPython(create, drop)]
