"""Secrets at rest: Fernet encryption with the keys of ``QUICKSEND_ENCRYPTION_KEYS`` (newest first).

Every stored secret (a Twilio auth token, …) goes through ``encrypt``/``decrypt``. Several keys make rotation
possible: new values are encrypted with the first (newest) key, old values still decrypt with any listed key,
and ``manage.py rotate_encryption_keys`` re-encrypts every ``EncryptedTextField`` with the newest key so the
old key can then be dropped.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key (a key was removed too early)."""

    def __init__(self) -> None:
        super().__init__(
            "A stored secret cannot be decrypted with the keys in QUICKSEND_ENCRYPTION_KEYS. Put back the "
            "key it was encrypted with: keep old keys after the new one until "
            "`manage.py rotate_encryption_keys` has run."
        )


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _fernet() -> MultiFernet:
    # Keyed on the current setting so tests (and a reloaded configuration) that change the keys take effect.
    return _multi_fernet(tuple(settings.QUICKSEND_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt with the newest key; the result is ASCII (store it in a text column)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever configured key matches; raise SecretUnreadable if none does."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise SecretUnreadable()


def rotate(ciphertext: str) -> str:
    """Re-encrypt a stored value with the newest key (same plaintext)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise SecretUnreadable()


class EncryptedTextField(models.TextField):
    """A text column that holds ciphertext made by ``encrypt``.

    It does not decrypt on load (the plaintext never sits on a model instance where a repr, a form or a
    serializer could show it); models expose explicit ``set_…``/``get_…`` methods. Its type is what
    ``rotate_encryption_keys`` looks for.
    """


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding encrypted secrets, across all installed apps."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model, field.attname))
    return found


def rotate_all(batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored secret with the newest key; return the count per ``app.Model.field``."""
    counts: dict[str, int] = {}
    for model, attname in encrypted_fields():
        changed = 0
        pending = []
        for obj in model._default_manager.exclude(**{attname: ""}).only("pk", attname).iterator():
            setattr(obj, attname, rotate(getattr(obj, attname)))
            pending.append(obj)
            if len(pending) >= batch_size:
                model._default_manager.bulk_update(pending, [attname])
                changed += len(pending)
                pending = []
        if pending:
            model._default_manager.bulk_update(pending, [attname])
            changed += len(pending)
        counts[f"{model._meta.label}.{attname}"] = changed
    return counts
