"""Load the shipped VAT rate data (tax/data/vat_rates.json). Re-runnable; ``manage.py tax_load_rates`` loads
later versions of the file the same way."""

from django.db import migrations

from tax.loading import load_rate_data
from tax.rates import load_rate_file


def load(apps, schema_editor):
    load_rate_data(
        load_rate_file(),
        jurisdiction_model=apps.get_model("tax", "Jurisdiction"),
        rate_model=apps.get_model("tax", "TaxRate"),
        load_model=apps.get_model("tax", "RateDataLoad"),
    )


def unload(apps, schema_editor):
    apps.get_model("tax", "TaxRate").objects.filter(source="data_file").delete()
    apps.get_model("tax", "RateDataLoad").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("tax", "0001_initial")]

    operations = [migrations.RunPython(load, unload)]
