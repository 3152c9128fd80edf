"""The phone normalizer: every accepted number comes out as valid E.164, whatever the formatting."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.phones import InvalidPhoneNumber, normalize_phone, region_for, try_normalize_phone


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", 1, "+14155552671"),
        ("+1 415 555 2671", "44", "+14155552671"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "+44", "+442079460958"),
        ("  +44 (0)20 7946 0958 ", None, "+442079460958"),
    ],
)
def test_formats_people_type_become_e164(raw, country, expected):
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize("raw", ["555-12", "", "   ", "hello", "+1 000 000 0000", "1" * 50])
def test_invalid_numbers_raise_a_message_naming_the_value(raw):
    with pytest.raises(InvalidPhoneNumber) as excinfo:
        normalize_phone(raw, "US")
    assert str(excinfo.value)
    assert try_normalize_phone(raw, "US") is None


def test_unknown_country_code_is_refused():
    with pytest.raises(InvalidPhoneNumber, match="not a known country calling code"):
        region_for("999")


_regions = st.sampled_from(["US", "GB", "DE", "FR", "AU", "BR", "IN", "CA", "MX", "ZA"])


@given(region=_regions, data=st.data())
def test_example_numbers_roundtrip_in_any_format(region, data):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    fmt = data.draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
                phonenumbers.PhoneNumberFormat.RFC3966,
            ]
        )
    )
    text = phonenumbers.format_number(example, fmt).replace("tel:", "")
    expected = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(text, region) == expected
    # Normalizing is idempotent.
    assert normalize_phone(expected, "US") == expected


@given(st.text(max_size=30))
def test_never_crashes_and_output_is_valid_e164(text):
    result = try_normalize_phone(text, "US")
    if result is not None:
        assert result.startswith("+") and result[1:].isdigit()
        assert phonenumbers.is_valid_number(phonenumbers.parse(result, None))
