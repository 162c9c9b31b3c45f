"""``{% load history %}{% history_timeline obj %}``: an object's change history, newest first.

Put it on a page that already checked the viewer may open ``obj``; the tag itself checks nothing more.
At most ``limit`` records (default 50) are shown, in a bounded number of queries.
"""

from __future__ import annotations

from django import template

from backbone.selectors import TIMELINE_LIMIT, object_timeline

register = template.Library()


@register.inclusion_tag("backbone/partials/history_timeline.html")
def history_timeline(obj, limit: int = TIMELINE_LIMIT):
    items = object_timeline(obj, limit=limit) if obj is not None else []
    return {"items": items, "limit": limit, "truncated": len(items) >= limit}


@register.inclusion_tag("backbone/partials/action_badge.html")
def action_badge(action: str):
    """The coloured badge of a history action ('+', '~' or '-')."""
    styles = {
        "+": ("Created", "text-bg-success"),
        "~": ("Changed", "text-bg-primary"),
        "-": ("Deleted", "text-bg-danger"),
    }
    label, css = styles.get(action, (action, "text-bg-secondary"))
    return {"label": label, "css": css}
