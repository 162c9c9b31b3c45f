"""On PostgreSQL, contract versions can never be changed or deleted: corrections are new versions."""

from django.db import migrations

TABLE = "projects_contractversion"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # throughline_refuse_change() comes from backbone 0003.
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION throughline_refuse_change()"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("projects", "0002_role_permissions"), ("backbone", "0003_append_only_triggers")]

    operations = [migrations.RunPython(create, drop)]
