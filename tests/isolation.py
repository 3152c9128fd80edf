"""Tenant-isolation harness.

Given two organizations, it builds each one's data with the builders of ``tests/isolation_world.py``, then
walks every URL pattern of the project and every path of the OpenAPI schema that takes a parameter, fills
the parameter with identifiers of organization A's objects, and requests each with every method as an admin
of organization B. Every answer must be 403, 404 or 405, must not contain organization A's canary text, and
organization A's data must be unchanged at the end. Routes added later are picked up without edits; a tenant
model without a builder fails the run, naming it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from tenancy.models import Organization
from tests.isolation_world import BUILDERS, load_app_builders

ALLOWED_STATUSES = {403, 404, 405}
METHODS = ("get", "post", "put", "patch", "delete")
# Prefixes that are not organization-scoped: Django's admin is for superusers only (tested on its own),
# static files carry no data, the sandbox is a stand-in for Twilio with its own (Basic) authentication.
EXCLUDED_PREFIXES = ("admin/", "static/", "media/", "sandbox/")
_ROUTE_VAR = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()\\]|\\.)*\)")


@dataclass
class Route:
    template: str  # e.g. "api/v1/teams/{pk}"
    params: list[str]
    model: type[models.Model] | None = None
    source: str = "urlconf"
    # A page that answers anyone by design (the embed pages: a shell holding no data until its launch token
    # is exchanged). It may answer 200, still never with another organization's data.
    public: bool = False


@dataclass
class World:
    org: Organization
    admin: object
    canary: str
    objects: dict[type[models.Model], list[models.Model]] = field(default_factory=dict)

    def identifiers(self, model: type[models.Model] | None = None) -> set[str]:
        """Every value that could name one of this world's objects in a URL (pks, slugs, sids, ids)."""
        values: set[str] = set()
        targets = [model] if model is not None else list(self.objects)
        for m in targets:
            for obj in self.objects.get(m, []):
                values.add(str(obj.pk))
                for f in obj._meta.concrete_fields:
                    if isinstance(f, (models.SlugField, models.UUIDField)) or f.name.endswith(
                        ("sid", "external_id", "uuid", "token")
                    ):
                        value = getattr(obj, f.attname)
                        if value:
                            values.add(str(value))
        if model is None or model is Organization:
            values.add(self.org.slug)
            values.add(str(self.org.pk))
        return values


def tenant_models() -> list[type[models.Model]]:
    found = []
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if (
                isinstance(f, models.ForeignKey)
                and f.name == "organization"
                and f.related_model is Organization
            ):
                found.append(model)
                break
    return found


def build_world(org: Organization, admin, canary: str) -> World:
    load_app_builders()
    missing = [m._meta.label for m in tenant_models() if m not in BUILDERS]
    assert not missing, (
        "Tenant models without an isolation builder (add one in tests/isolation_world_<app>.py): "
        + ", ".join(missing)
    )
    world = World(org=org, admin=admin, canary=canary)
    for model in tenant_models():
        built = BUILDERS[model](org, admin, canary)
        assert built is not None, f"builder for {model._meta.label} returned nothing"
        world.objects[model] = list(model._default_manager.filter(organization=org))
        assert world.objects[model], f"builder for {model._meta.label} created no row for {org}"
    return world


def snapshot(org: Organization) -> dict[str, list]:
    data = {}
    for model in tenant_models():
        rows = model._default_manager.filter(organization=org).order_by("pk")
        data[model._meta.label] = [
            {
                k: (str(v) if not isinstance(v, (int, str, bool, type(None))) else v)
                for k, v in model_to_dict(obj).items()
            }
            for obj in rows
        ]
    return data


def _model_of(callback) -> type[models.Model] | None:
    for holder in (getattr(callback, "cls", None), getattr(callback, "view_class", None), callback):
        if holder is None:
            continue
        explicit = getattr(holder, "isolation_model", None)
        if explicit is not None:
            return explicit
        qs = getattr(holder, "queryset", None)
        if qs is not None and hasattr(qs, "model"):
            return qs.model
        model = getattr(holder, "model", None)
        if isinstance(model, type) and issubclass(model, models.Model):
            return model
    return None


def _pattern_template(pattern) -> tuple[str, list[str]] | None:
    if isinstance(pattern, RoutePattern):
        route = str(pattern)
        return _ROUTE_VAR.sub(lambda m: "{" + m["name"] + "}", route), [
            m["name"] for m in _ROUTE_VAR.finditer(route)
        ]
    if isinstance(pattern, RegexPattern):
        regex = pattern._regex.lstrip("^").removesuffix("$").removesuffix(r"\Z")
        names = [m["name"] for m in _REGEX_GROUP.finditer(regex)]
        text = (
            _REGEX_GROUP.sub(lambda m: "{" + m["name"] + "}", regex).replace("\\.", ".").replace("\\/", "/")
        )
        if re.search(r"[()\[\]*+?|\\]", text):
            return None
        return text, names
    return None


def iter_url_routes(resolver: URLResolver | None = None, prefix: str = "") -> tuple[list[Route], list[str]]:
    resolver = resolver or get_resolver()
    routes, unbuildable = [], []
    for entry in resolver.url_patterns:
        piece = _pattern_template(entry.pattern)
        if piece is None:
            unbuildable.append(prefix + str(entry.pattern))
            continue
        text, names = piece
        full = prefix + text
        if full.startswith(EXCLUDED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            sub_routes, sub_bad = iter_url_routes(entry, full)
            routes += sub_routes
            unbuildable += sub_bad
        elif isinstance(entry, URLPattern):
            params = re.findall(r"\{(\w+)\}", full)
            if params:
                public = bool(getattr(entry.callback, "isolation_public", False))
                routes.append(Route(full, params, _model_of(entry.callback), public=public))
    return routes, unbuildable


def iter_schema_routes() -> list[Route]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for path in schema.get("paths", {}):
        params = re.findall(r"\{(\w+)\}", path)
        if params:
            routes.append(Route(path.lstrip("/"), params, None, source="schema"))
    return routes


def _fill(route: Route, value: str) -> str:
    path = route.template
    for name in route.params:
        path = path.replace("{" + name + "}", value)
    return "/" + path


@dataclass
class Report:
    requests: int = 0
    routes: int = 0
    own_org_ok: int = 0
    failures: list[str] = field(default_factory=list)


def check_isolation(
    world_a: World, world_b: World, outsider, *, extra_routes: list[Route] | None = None
) -> Report:
    """Run the whole walk; raise AssertionError listing every leak found."""
    url_routes, unbuildable = iter_url_routes()
    assert not unbuildable, f"URL patterns the harness cannot build (simplify them): {unbuildable}"
    routes = url_routes + iter_schema_routes() + (extra_routes or [])
    seen: set[str] = set()
    report = Report()
    outsider_client = APIClient(raise_request_exception=False)
    outsider_client.force_login(outsider)
    owner_client = APIClient()
    owner_client.force_login(world_a.admin)
    b_values = world_b.identifiers()
    before = snapshot(world_a.org)

    for route in routes:
        key = re.sub(r"\{\w+\}", "{}", route.template)
        if key in seen:
            continue
        seen.add(key)
        report.routes += 1
        model = route.model if route.model in world_a.objects or route.model is Organization else None
        # A value naming one of B's own objects of the route's model may legitimately answer 200 for B;
        # values of B's other models cannot (subtracting them all hid most of A's small pks).
        candidates = sorted(world_a.identifiers(model) - (world_b.identifiers(model) if model else b_values))
        if model is not None and candidates:
            # The route must work for its own organization, or the walk below proves nothing.
            own = owner_client.get(_fill(route, candidates[0]))
            if own.status_code in (200, 405):
                report.own_org_ok += 1
            else:
                report.failures.append(
                    f"{route.template}: its own organization's admin got {own.status_code} for "
                    f"{candidates[0]} (route broken, or its model guess is wrong)"
                )
        for value in candidates:
            url = _fill(route, value)
            for method in METHODS:
                response = (
                    getattr(outsider_client, method)(url, {}, format="json")
                    if method != "get"
                    else outsider_client.get(url)
                )
                report.requests += 1
                body = response.content.decode(errors="replace") if hasattr(response, "content") else ""
                allowed = ALLOWED_STATUSES | ({200} if route.public else set())
                if response.status_code not in allowed:
                    report.failures.append(
                        f"{method.upper()} {url} -> {response.status_code} (expected 403/404/405)"
                    )
                if world_a.canary in body:
                    report.failures.append(f"{method.upper()} {url} -> body contains organization A's data")
    after = snapshot(world_a.org)
    if before != after:
        changed = [label for label in before if before[label] != after.get(label)]
        report.failures.append(f"organization A's data changed during the walk: {changed}")
    assert not report.failures, "Tenant isolation failures:\n" + "\n".join(report.failures[:50])
    return report


def new_canary() -> str:
    return f"CANARY{uuid.uuid4().hex[:10].upper()}"
