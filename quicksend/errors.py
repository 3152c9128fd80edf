"""The one domain error, and the two places that answer it: the REST API and the pages.

Services refuse with ``DomainError`` (or a subclass): a message in plain words the person can act on, the
input at fault when there is one (``field``) and the HTTP status an API answers with. Validation with several
field errors at once (a model's ``full_clean``, a form-like payload) stays Django's ``ValidationError``.

Both are turned into an answer exactly once:

* the REST API: ``quicksend.api.exception_handler`` answers ``api_error_body(exc)``;
* pages: ``attempt(target, service, ...)`` calls a service and, when it refuses, puts the reason on the
  form (``target`` a form: on the named field, else the form's top) or in the page's messages (``target`` the
  request), and returns ``FAILED``; a refusal no page caught is turned by ``PageErrorMiddleware`` into an
  error message on the page the person came from, never a server error.

Views therefore hold no try/except around services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import url_has_allowed_host_and_scheme


class DomainError(Exception):
    """A refusal or failure of a service, in plain words.

    ``message``: what happened and what to do, shown as is; ``field``: the input at fault (None: the answer
    names no field; "": it says that no single input is at fault);
    ``http_status``: the status of the API answer (400 unless a subclass or the caller says otherwise).
    Subclasses add machine-readable details to the API answer through ``details()``.
    """

    http_status: int = 400

    def __init__(self, message: str, *, field: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if http_status is not None:
            self.http_status = http_status

    @property
    def messages(self) -> list[str]:
        """The reason as a list, the way Django's ValidationError offers it."""
        return [self.message]

    def details(self) -> dict[str, Any]:
        """Extra keys of the API answer (beside ``detail`` and ``field``)."""
        return {}


class Conflict(DomainError):
    """The action no longer applies to the object as it is now (answered 409)."""

    http_status = 409


def api_error_body(exc: Exception) -> tuple[dict[str, Any], int] | None:
    """The API answer (body, status) to a domain error, a Django ValidationError or a Django PermissionDenied;
    None for anything else.

    ``DomainError`` → ``{"detail": message, "field": field, ...details}`` (no ``field`` when it is None);
    ``ValidationError`` → its field errors (``{"field": ["…"]}``) or ``{"detail": ["…"]}`` when it names no
    field; ``PermissionDenied`` with a message → ``{"detail": message}`` (403).
    """
    if isinstance(exc, DomainError):
        body = {"detail": exc.message} if exc.field is None else {"detail": exc.message, "field": exc.field}
        return {**body, **exc.details()}, exc.http_status
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return exc.message_dict, 400
        return {"detail": exc.messages}, 400
    if isinstance(exc, PermissionDenied) and str(exc):
        return {"detail": str(exc)}, 403
    return None


def plain_words(exc: DomainError | ValidationError) -> str:
    """The reason of a refusal as one sentence (several messages joined)."""
    return " ".join(exc.messages)


class _Failed:
    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Any = _Failed()


def attempt(
    target: BaseForm | HttpRequest,
    service: Callable,
    *args,
    prefix: str = "",
    form_field: str | None = None,
    **kwargs,
):
    """Call ``service(*args, **kwargs)`` for a page; its result, or ``FAILED`` when it refused.

    A refusal (``DomainError`` or ``ValidationError``) lands where the person looks: on ``target``'s field
    when ``target`` is a form and the error names one of its fields, else at the top of the form, else (with
    the request as ``target``) as an error message on the next page, after ``prefix``. ``form_field``: the
    form field an error naming no field belongs to (default: the top of the form).
    """
    try:
        return service(*args, **kwargs)
    except (DomainError, ValidationError) as exc:
        report(target, exc, prefix=prefix, form_field=form_field)
        return FAILED


def report(
    target: BaseForm | HttpRequest,
    exc: DomainError | ValidationError,
    *,
    prefix: str = "",
    form_field: str | None = None,
) -> None:
    """Show a refusal on a page (see ``attempt``)."""
    if isinstance(target, BaseForm):
        if isinstance(exc, DomainError):
            field = exc.field if exc.field in target.fields else form_field
            target.add_error(field, exc.message)
        elif hasattr(exc, "error_dict"):
            known = {k: v for k, v in exc.error_dict.items() if k in target.fields}
            rest = [e for k, v in exc.error_dict.items() if k not in target.fields for e in v]
            if known:
                target.add_error(None, ValidationError(known))
            if rest:
                target.add_error(form_field, rest)
        else:
            target.add_error(form_field, exc)
        return
    flash.error(target, f"{prefix}{plain_words(exc)}")


class PageErrorMiddleware(MiddlewareMixin):
    """A refusal that escaped a page view (a service called outside ``attempt``) becomes an error message,
    shown on the page the person came from (same site only; else the home page). The API answers its own
    errors (``quicksend.api.exception_handler``) and is left alone."""

    def process_exception(self, request: HttpRequest, exc: Exception):
        if request.path.startswith("/api/") or not isinstance(exc, DomainError | ValidationError):
            return None
        flash.error(request, plain_words(exc))
        return HttpResponseRedirect(_back(request))


def _back(request: HttpRequest) -> str:
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    # A GET that failed would fail again: never send it back to itself.
    if safe and not (request.method == "GET" and referer.endswith(request.get_full_path())):
        return referer
    return "/"
