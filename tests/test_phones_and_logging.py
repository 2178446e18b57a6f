import logging

import pytest

from core.logging import RedactingFormatter
from core.phones import InvalidPhone, location_of, mask_phone, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["+5511999990001", "whatsapp:+5511999990001", "(11) 99999-0001", "5511999990001", "+55 11 99999 0001",
     "551199990001"],  # the last: a WhatsApp id without the ninth digit
)
def test_brazilian_numbers_normalise_to_e164(raw):
    assert normalize_phone(raw) == "+5511999990001"


@pytest.mark.parametrize("raw", ["", "abc", "+55 11", "whatsapp:", "+5500000000000"])
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_location_from_ddd():
    loc = location_of("+5531988887777")
    assert (loc.ddd, loc.state, loc.city) == ("31", "MG", "Belo Horizonte")
    assert location_of("+14155238886").ddd is None


def test_masking():
    assert mask_phone("+5511999990001") == "+55 11 9****-0001"
    assert mask_phone("+551133334444") == "+55 11 3***-4444"


def test_log_lines_mask_phones_and_secrets_and_stay_on_one_line():
    formatter = RedactingFormatter(secrets=["tok_abcdefghijkl"])
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent to %s with tok_abcdefghijkl",
                                   ("whatsapp:+5511999990001",), sys.exc_info())
    line = formatter.format(record)
    assert "+55 11 9****-0001" in line
    assert "5511999990001" not in line
    assert "tok_abcdefghijkl" not in line and "[redacted]" in line
    assert "\n" not in line
