"""Secrets at rest: MultiFernet with the configured keys, and key rotation."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.models import TwilioAccount
from quicksend import crypto
from tests.factories_messaging import TwilioAccountFactory

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def test_encrypt_then_decrypt_gives_the_plaintext_back(settings):
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW]
    ciphertext = crypto.encrypt("s3cret-token")
    assert "s3cret-token" not in ciphertext
    assert crypto.decrypt(ciphertext) == "s3cret-token"


def test_old_ciphertext_still_decrypts_after_a_new_key_is_added(settings):
    settings.QUICKSEND_ENCRYPTION_KEYS = [OLD]
    ciphertext = crypto.encrypt("value")
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW, OLD]
    assert crypto.decrypt(ciphertext) == "value"


def test_a_removed_key_makes_the_secret_unreadable_with_a_clear_message(settings):
    settings.QUICKSEND_ENCRYPTION_KEYS = [OLD]
    ciphertext = crypto.encrypt("value")
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(crypto.SecretUnreadable, match="rotate_encryption_keys"):
        crypto.decrypt(ciphertext)


@pytest.mark.django_db
def test_rotate_encryption_keys_reencrypts_every_token_with_the_newest_key(settings):
    settings.QUICKSEND_ENCRYPTION_KEYS = [OLD]
    accounts = [TwilioAccountFactory(auth_token=f"token-{i}") for i in range(3)]
    before = {a.pk: a.auth_token_encrypted for a in accounts}

    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW, OLD]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 3 secret(s)" in out.getvalue()

    # Only the new key left: every token still reads back.
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW]
    for i, account in enumerate(accounts):
        account.refresh_from_db()
        assert account.auth_token_encrypted != before[account.pk]
        assert account.get_auth_token() == f"token-{i}"


@pytest.mark.django_db
def test_rotation_without_the_old_key_fails_and_changes_nothing(settings):
    settings.QUICKSEND_ENCRYPTION_KEYS = [OLD]
    account = TwilioAccountFactory(auth_token="token")
    stored = account.auth_token_encrypted
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert TwilioAccount.objects.get(pk=account.pk).auth_token_encrypted == stored


def test_the_twilio_token_column_is_found_by_the_rotation():
    assert (TwilioAccount, "auth_token_encrypted") in crypto.encrypted_fields()


@pytest.mark.django_db
def test_validate_again_with_an_unreadable_token_says_so(settings, alice):
    from messaging.twilio.accounts import do_validate_twilio_account

    settings.QUICKSEND_ENCRYPTION_KEYS = [OLD]
    account = TwilioAccountFactory(auth_token="token")
    settings.QUICKSEND_ENCRYPTION_KEYS = [NEW]
    error = do_validate_twilio_account(account, alice)
    assert error.kind == "secret_unreadable" and not error.retryable
    account.refresh_from_db()
    assert "cannot be decrypted" in account.last_validation_result
