"""Signals of the crm app: the seams other apps hook into without crm knowing them.

- ``record_owner_changed(record, previous_owner_id, actor)``: a person changed a record's owner from a page
  (the record's edit form or its Owner box). Sent by the page after the change is saved. A receiver that has
  a follow-up question about the change (for example what happens to the person's text conversations)
  returns the address of a page that asks it; the first address returned is where the person goes next,
  with ``next`` set to where they would have gone. Receivers with nothing to ask return None.
- ``records_owner_changed(records, actor)``: the same for several records of one type reassigned at once (the
  record lists' bulk "Reassign"): ``records`` are those whose owner changed.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.dispatch import Signal
from django.utils.http import url_has_allowed_host_and_scheme

record_owner_changed = Signal()
records_owner_changed = Signal()


def owner_change_follow_up(request, record, previous_owner_id: int | None, default_url: str) -> str:
    """Where to go after a page changed the owner: a receiver's question page, else ``default_url``."""
    if record.owner_id == previous_owner_id:
        return default_url
    answers = record_owner_changed.send(
        sender=type(record), record=record, previous_owner_id=previous_owner_id, actor=request.user
    )
    return _first_question(request, answers, default_url)


def owners_change_follow_up(request, records, previous_owner_ids: dict, default_url: str) -> str:
    """The same after several records were reassigned at once (``previous_owner_ids``: pk → owner id)."""
    changed = [r for r in records if r.owner_id != previous_owner_ids.get(r.pk)]
    if not changed:
        return default_url
    answers = records_owner_changed.send(sender=type(changed[0]), records=changed, actor=request.user)
    return _first_question(request, answers, default_url)


def _first_question(request, answers, default_url: str) -> str:
    for _receiver, url in answers:
        if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
            joiner = "&" if "?" in url else "?"
            return f"{url}{joiner}{urlencode({'next': default_url})}"
    return default_url
