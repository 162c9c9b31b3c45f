"""On PostgreSQL, tax calculation evidence cannot be edited, and once tied to an issued document it cannot be
deleted either. The only change ever allowed is the one that ties it to its document (sets locked_at)."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION tax_calculation_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.locked_at IS NOT NULL THEN
            RAISE EXCEPTION 'tax calculation % belongs to an issued document: DELETE refused', OLD.public_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.locked_at IS NOT NULL THEN
        RAISE EXCEPTION 'tax calculation % belongs to an issued document: UPDATE refused', OLD.public_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.context IS DISTINCT FROM OLD.context OR NEW.result IS DISTINCT FROM OLD.result
       OR NEW.sha256 IS DISTINCT FROM OLD.sha256 OR NEW.engine IS DISTINCT FROM OLD.engine
       OR NEW.engine_version IS DISTINCT FROM OLD.engine_version
       OR NEW.rate_data_version IS DISTINCT FROM OLD.rate_data_version
       OR NEW.net_amount IS DISTINCT FROM OLD.net_amount OR NEW.tax_amount IS DISTINCT FROM OLD.tax_amount
       OR NEW.rules_fired IS DISTINCT FROM OLD.rules_fired OR NEW.legal_notes IS DISTINCT FROM OLD.legal_notes THEN
        RAISE EXCEPTION 'tax calculation % is evidence: its content cannot change', OLD.public_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    schema_editor.execute("DROP TRIGGER IF EXISTS tax_taxcalculation_guard ON tax_taxcalculation")
    schema_editor.execute(
        "CREATE TRIGGER tax_taxcalculation_guard BEFORE UPDATE OR DELETE ON tax_taxcalculation "
        "FOR EACH ROW EXECUTE FUNCTION tax_calculation_guard()"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS tax_taxcalculation_guard ON tax_taxcalculation")
    schema_editor.execute("DROP FUNCTION IF EXISTS tax_calculation_guard()")


class Migration(migrations.Migration):
    dependencies = [("tax", "0003_role_permissions")]

    operations = [migrations.RunPython(create, drop)]
