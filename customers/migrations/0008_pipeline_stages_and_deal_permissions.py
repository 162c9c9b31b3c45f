"""The default pipeline stages, and who may see and work deals and quotes (ROLES.md "deals, quotes").

Sales reps work their own deals (object scope in the selectors) and may mark them won; project managers,
finance and executives see them; auditors read everything (ALL_VIEW); admins hold ALL and configure stages.
As in 0005, the matrix here restates the app's whole matrix, since the newest one is the truth.
"""

from importlib import import_module

from django.db import migrations

from backbone.roles import grant_role_permissions

STAGES = [
    # code, name, position, default probability %, outcome
    ("qualified", "Qualified", 10, 20, "open"),
    ("proposal", "Proposal", 20, 40, "open"),
    ("negotiation", "Negotiation", 30, 60, "open"),
    ("won", "Won", 40, 100, "won"),
    ("lost", "Lost", 50, 0, "lost"),
]

SALES_MODELS = ["deal", "quote", "quoteline", "quotemilestone", "quoteattachment"]


def _perms(verbs, models):
    return [f"{verb}_{model}" for verb in verbs for model in models]


ADDED_HERE = {
    "sales": _perms(["view", "add", "change"], SALES_MODELS)
    + _perms(["delete"], ["quoteline", "quotemilestone", "quoteattachment"])
    + ["view_pipelinestage", "win_deal"],
    "project_manager": _perms(["view"], SALES_MODELS + ["pipelinestage"]),
    "finance": _perms(["view"], SALES_MODELS + ["pipelinestage"]),
    "executive": _perms(["view"], SALES_MODELS + ["pipelinestage"]),
}


def _matrix(*, with_deals: bool) -> dict[str, list[str]]:
    matrix = import_module("customers.migrations.0005_exemption_certificate_permissions")._matrix(
        with_certificates=True
    )
    if with_deals:
        for role, perms in ADDED_HERE.items():
            matrix[role] = matrix.get(role, []) + perms
    return matrix


def forwards(apps, schema_editor):
    PipelineStage = apps.get_model("customers", "PipelineStage")
    for code, name, position, probability, outcome in STAGES:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": name, "position": position, "default_probability": probability, "outcome": outcome},
        )
    grant_role_permissions(apps, "customers", _matrix(with_deals=True))


def backwards(apps, schema_editor):
    grant_role_permissions(apps, "customers", _matrix(with_deals=False))


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_deals_and_quotes")]

    operations = [migrations.RunPython(forwards, backwards)]
