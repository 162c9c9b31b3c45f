from django.apps import AppConfig

# The pages of these models (projects/urls.py, kwarg ``public_id``): the History area and notifications link
# to them. Until the pages exist, ``backbone.links.object_url`` answers None and nothing links.
OBJECT_URLS = {
    "projects.project": "projects:project-detail",
    "projects.changeorder": "projects:change-order-detail",
}


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects and contracts"

    def ready(self) -> None:
        from backbone.demo import register_seeder
        from backbone.links import register_object_url

        from .demo import seed_projects

        for model_label, url_name in OBJECT_URLS.items():
            register_object_url(model_label, url_name)
        # After the customers seeder (order 10): the projects are won from deals on its demo customers.
        register_seeder("projects", seed_projects, order=20)
