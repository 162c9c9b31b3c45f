from django.apps import AppConfig

OBJECT_URLS = {
    "customers.customer": "customers:customer-detail",
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

        from .demo import seed_customers

        register_seeder("customers", seed_customers, order=10)
