"""On PostgreSQL, an issued invoice, its lines and its items never change and are never deleted.

The services refuse first, with a clear message (``billing.issuing``); these triggers are the backstop
against any other writer (a shell, a script, a bug):

* ``billing_invoice``: no UPDATE and no DELETE of a row whose status is ``issued``. Issuing itself is the
  UPDATE from ``approved`` to ``issued`` (OLD.status is not yet ``issued``), so it passes; nothing after it
  does. No later set-once field is allowed: PDFs and delivery live in their own tables.
* ``billing_invoiceline``: no INSERT into, UPDATE of or DELETE from the lines of an issued invoice (nor
  moving a line onto one).
* ``billing_invoiceitem``: the same, with exactly one exception: an item of an issued invoice may be
  *released* (``live`` true → false, ``updated_at`` with it, every other column unchanged). A credit note
  that gives its items back to billing does that; released never becomes live again.

The line and item triggers read the invoice's status ``FOR KEY SHARE``: a writer racing an issuing
transaction (which holds the invoice ``FOR UPDATE``) waits for it and then sees ``issued``.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION billing_invoice_is_issued(invoice bigint) RETURNS boolean AS $$
DECLARE
    current_status text;
BEGIN
    IF invoice IS NULL THEN
        RETURN false;
    END IF;
    SELECT status INTO current_status FROM billing_invoice WHERE id = invoice FOR KEY SHARE;
    RETURN current_status = 'issued';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'issued' THEN
        RAISE EXCEPTION 'invoice % is issued: % refused (correct it with a credit note)', OLD.number, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoice_line_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND billing_invoice_is_issued(OLD.invoice_id) THEN
        RAISE EXCEPTION 'line % belongs to an issued invoice: % refused', OLD.public_id, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF billing_invoice_is_issued(NEW.invoice_id) THEN
        RAISE EXCEPTION 'line % would belong to an issued invoice: % refused', NEW.public_id, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoice_item_guard() RETURNS trigger AS $$
DECLARE
    releasing CONSTANT text[] := ARRAY['live', 'updated_at'];
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND billing_invoice_is_issued(OLD.invoice_id) THEN
        IF TG_OP = 'DELETE' OR NOT (OLD.live AND NOT NEW.live
                AND (to_jsonb(OLD) - releasing) = (to_jsonb(NEW) - releasing)) THEN
            RAISE EXCEPTION 'item % belongs to an issued invoice: % refused (only releasing it is allowed)',
                OLD.public_id, TG_OP USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF billing_invoice_is_issued(NEW.invoice_id) THEN
        RAISE EXCEPTION 'item % would belong to an issued invoice: % refused', NEW.public_id, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TRIGGERS = [
    ("billing_invoice", "billing_invoice_issued_guard", "UPDATE OR DELETE", "billing_invoice_guard"),
    (
        "billing_invoiceline",
        "billing_invoiceline_issued_guard",
        "INSERT OR UPDATE OR DELETE",
        "billing_invoice_line_guard",
    ),
    (
        "billing_invoiceitem",
        "billing_invoiceitem_issued_guard",
        "INSERT OR UPDATE OR DELETE",
        "billing_invoice_item_guard",
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS, params=None)
    for table, trigger, events, function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {trigger} BEFORE {events} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, trigger, _events, _function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for function in ("billing_invoice_guard()", "billing_invoice_line_guard()", "billing_invoice_item_guard()"):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_invoice_is_issued(bigint)")


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_role_permissions")]

    operations = [migrations.RunPython(create, drop)]
