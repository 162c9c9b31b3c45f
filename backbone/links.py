"""Where an object's page lives, for pages of the backbone that link to records of higher apps.

The backbone may not import the apps above it (the layers rule), yet the History area wants to link an
audit entry to the customer or product it is about. Each higher app fills this registry from its
``AppConfig.ready``::

    from backbone.links import register_object_url

    register_object_url("customers.customer", "customers:customer-detail")

The URL pattern must take the object's public UUID, by default as the ``public_id`` keyword argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class _Route:
    url_name: str
    kwarg: str


_routes: dict[str, _Route] = {}


def register_object_url(model_label: str, url_name: str, *, kwarg: str = "public_id") -> None:
    """Declare that objects of ``model_label`` (``app_label.modelname``, lower case) have a page.

    Re-registering a label replaces the previous route, so calling this from ``ready()`` is safe when
    the app registry is set up more than once (tests).
    """
    _routes[model_label.lower()] = _Route(url_name=url_name, kwarg=kwarg)


def object_url(model_label: str, public_id) -> str | None:
    """The page of the object, or ``None`` when its model has no page (yet) or it has no public ID."""
    route = _routes.get(model_label.lower())
    if route is None or not public_id:
        return None
    try:
        return reverse(route.url_name, kwargs={route.kwarg: public_id})
    except NoReverseMatch:
        return None


def registered_object_urls() -> dict[str, str]:
    """Label → URL name of every registered route (for tests and diagnostics)."""
    return {label: route.url_name for label, route in _routes.items()}
