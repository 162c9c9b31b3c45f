import itertools

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from backbone.history import audit_chain_verify
from backbone.models import AuditChainHead, AuditEntry
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_every_history_record_is_chained():
    CustomerFactory.create_batch(3)
    entries = list(AuditEntry.objects.order_by("id"))
    assert len(entries) == 6  # 3 customers + 3 billing addresses
    assert entries[0].prev_hash == "0" * 64
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.entry_hash
    assert audit_chain_verify() == (True, 6, None)
    assert AuditChainHead.objects.get().length == 6


def test_an_edited_entry_breaks_the_chain():
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses the edit outright; see the next test")
    CustomerFactory.create_batch(2)
    victim = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=victim.pk).update(reason="nothing to see here")
    intact, checked, broken = audit_chain_verify()
    assert not intact and checked == 1 and broken.pk == victim.pk


def test_audit_entries_cannot_be_updated_or_deleted_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL")
    CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEntry.objects.update(reason="rewritten")
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEntry.objects.all().delete()


def test_a_removed_entry_breaks_the_chain():
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses the delete outright")
    CustomerFactory.create_batch(2)
    AuditEntry.objects.order_by("id")[1].delete()
    assert audit_chain_verify()[0] is False


def test_audit_verify_command_exits_non_zero_when_broken(capsys):
    CustomerFactory()
    call_command("audit_verify")
    if connection.vendor != "postgresql":
        AuditEntry.objects.update(reason="x")
        with pytest.raises(SystemExit):
            call_command("audit_verify")
