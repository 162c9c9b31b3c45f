from django.apps import AppConfig

OBJECT_URLS = {
    "customers.customer": "customers:customer-detail",
    "customers.deal": "customers:deal-detail",
    "customers.quote": "customers:quote-detail",
    "customers.product": "customers:product-detail",
    "customers.legalentity": "customers:legal-entity-detail",
}


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers and catalog"

    def ready(self) -> None:
        # The History area (backbone) links audit entries to these pages without importing this app.
        from backbone.links import register_object_url

        for model_label, url_name in OBJECT_URLS.items():
            register_object_url(model_label, url_name)

        from backbone.demo import register_seeder

        from .demo import seed_customers, seed_deals

        register_seeder("customers", seed_customers, order=10)
        # Before the projects seeder (order 20), which wins deals of its own on the same demo customers.
        register_seeder("deals", seed_deals, order=15)
