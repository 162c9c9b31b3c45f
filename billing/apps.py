from django.apps import AppConfig

# The pages of these models (billing/urls.py, kwarg ``public_id``): the History area and notifications link
# to them.
OBJECT_URLS = {
    "billing.invoice": "billing:invoice-detail",
    "billing.invoicerun": "billing:run-detail",
}


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from backbone.demo import register_seeder
        from backbone.links import register_object_url

        from .demo import seed_billing

        for model_label, url_name in OBJECT_URLS.items():
            register_object_url(model_label, url_name)
        # After the projects seeder (order 20): it bills their approved time, expenses and milestones.
        register_seeder("billing", seed_billing, order=30)
