"""The guard of ``billing_invoiceitem`` (``0003_issued_invoices_immutable``) runs once a statement, not once a row.

An invoice run writes thousands of items a project with one ``INSERT … SELECT``; the row-level trigger called
a PL/pgSQL function and locked the invoice ``FOR KEY SHARE`` for every one of them, which cost more than the
insert itself. These statement-level triggers read the statement's rows from its transition tables
(``REFERENCING NEW TABLE / OLD TABLE``) and lock each invoice the statement touches once, in key order, with
exactly the guarantees of the row-level trigger:

* INSERT: no item may be added to an issued invoice.
* UPDATE: an item of an issued invoice may only be *released*: ``live`` true → false (``updated_at`` with it),
  every other column unchanged; an item may not be moved onto an issued invoice either. Old and new rows are
  paired by ``id``: a statement that changes an item's ``id`` changes a column, so for an item of an issued
  invoice it finds no unchanged partner and is refused.
* DELETE: no item of an issued invoice is deleted.

As before, the invoices are read ``FOR KEY SHARE`` and their status is taken from the locked (latest) row
version: a writer racing an issuing transaction (which holds the invoice ``FOR UPDATE``) waits for it and then
sees ``issued``. The lock is taken in a ``MATERIALIZED`` CTE so that the status test is never pushed below the
lock (a row that is not yet issued in the statement's snapshot must still be locked and re-read). An AFTER
trigger that raises aborts its statement, like the BEFORE trigger did: nothing of a refused statement is
written. Invoices and lines keep their row-level guards (a run writes a handful of lines a project).

Transition tables allow one event per trigger, hence three triggers and three functions. PostgreSQL only.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION billing_invoice_items_inserted_guard() RETURNS trigger AS $$
DECLARE
    issued bigint[];
    offender uuid;
BEGIN
    WITH locked AS MATERIALIZED (
        SELECT id, status FROM billing_invoice
        WHERE id IN (SELECT invoice_id FROM new_items)
        ORDER BY id
        FOR KEY SHARE
    )
    SELECT array_agg(id) INTO issued FROM locked WHERE status = 'issued';
    IF issued IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT public_id INTO offender FROM new_items WHERE invoice_id = ANY (issued) ORDER BY id LIMIT 1;
    RAISE EXCEPTION 'item % would belong to an issued invoice: INSERT refused', offender
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoice_items_updated_guard() RETURNS trigger AS $$
DECLARE
    releasing CONSTANT text[] := ARRAY['live', 'updated_at'];
    issued bigint[];
    offender uuid;
BEGIN
    WITH locked AS MATERIALIZED (
        SELECT id, status FROM billing_invoice
        WHERE id IN (SELECT invoice_id FROM old_items UNION SELECT invoice_id FROM new_items)
        ORDER BY id
        FOR KEY SHARE
    )
    SELECT array_agg(id) INTO issued FROM locked WHERE status = 'issued';
    IF issued IS NULL THEN
        RETURN NULL;
    END IF;
    -- An item of an issued invoice: only released (live true -> false), nothing else changed.
    SELECT o.public_id INTO offender
    FROM old_items o LEFT JOIN new_items n ON n.id = o.id
    WHERE o.invoice_id = ANY (issued)
      AND (n.id IS NULL OR NOT (o.live AND NOT n.live AND (to_jsonb(o) - releasing) = (to_jsonb(n) - releasing)))
    ORDER BY o.id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'item % belongs to an issued invoice: UPDATE refused (only releasing it is allowed)',
            offender USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- Any other item: never moved onto an issued invoice.
    SELECT n.public_id INTO offender
    FROM new_items n LEFT JOIN old_items o ON o.id = n.id
    WHERE n.invoice_id = ANY (issued) AND (o.id IS NULL OR o.invoice_id <> ALL (issued))
    ORDER BY n.id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'item % would belong to an issued invoice: UPDATE refused', offender
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoice_items_deleted_guard() RETURNS trigger AS $$
DECLARE
    issued bigint[];
    offender uuid;
BEGIN
    WITH locked AS MATERIALIZED (
        SELECT id, status FROM billing_invoice
        WHERE id IN (SELECT invoice_id FROM old_items)
        ORDER BY id
        FOR KEY SHARE
    )
    SELECT array_agg(id) INTO issued FROM locked WHERE status = 'issued';
    IF issued IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT public_id INTO offender FROM old_items WHERE invoice_id = ANY (issued) ORDER BY id LIMIT 1;
    RAISE EXCEPTION 'item % belongs to an issued invoice: DELETE refused (only releasing it is allowed)', offender
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""

# (trigger, event, transition tables, function)
TRIGGERS = [
    ("billing_invoiceitem_insert_guard", "INSERT", "NEW TABLE AS new_items", "billing_invoice_items_inserted_guard"),
    (
        "billing_invoiceitem_update_guard",
        "UPDATE",
        "OLD TABLE AS old_items NEW TABLE AS new_items",
        "billing_invoice_items_updated_guard",
    ),
    ("billing_invoiceitem_delete_guard", "DELETE", "OLD TABLE AS old_items", "billing_invoice_items_deleted_guard"),
]

ROW_TRIGGER = "billing_invoiceitem_issued_guard"

# The row-level function of 0003, as it was: restored when this migration is reversed.
ROW_FUNCTION = """
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


def statement_level(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS, params=None)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON billing_invoiceitem")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_invoice_item_guard()")
    for trigger, event, tables, function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON billing_invoiceitem")
        schema_editor.execute(
            f"CREATE TRIGGER {trigger} AFTER {event} ON billing_invoiceitem REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def row_level(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for trigger, _event, _tables, function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON billing_invoiceitem")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")
    schema_editor.execute(ROW_FUNCTION, params=None)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {ROW_TRIGGER} ON billing_invoiceitem")
    schema_editor.execute(
        f"CREATE TRIGGER {ROW_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceitem "
        "FOR EACH ROW EXECUTE FUNCTION billing_invoice_item_guard()"
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_review_delivery_permissions")]

    operations = [migrations.RunPython(statement_level, row_level)]
