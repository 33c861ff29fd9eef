"""Check-digit arithmetic for Chinese identifiers.

Used by the PII detectors (to tell a real-looking identifier from random digits), by the demo
county and by the dummy-data generator (to make fake identifiers that *pass* the checks, so
that code developed on dummy data behaves as on real data).

* Resident ID number (居民身份证号码), GB 11643-1999: 17 digits + check character (0-9 or X).
* Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters over a
  31-symbol alphabet, the last one a check character.
* Bank card numbers: the Luhn (mod 10) check.
"""

from __future__ import annotations

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_check_char(first17: str) -> str:
    """Check character of an 18-digit resident ID number, given its first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("an ID number body is 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(value: str) -> bool:
    """True when ``value`` is 18 characters with a correct GB 11643 check character.

    The birth date inside (positions 7-14) must also be a plausible calendar date.
    """
    if len(value) != 18 or not value[:17].isdigit():
        return False
    if value[17] not in "0123456789Xx":
        return False
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    return id_check_char(value[:17]) == value[17].upper()


def uscc_check_char(first17: str) -> str:
    """Check character of a unified social credit code, given its first 17 characters."""
    if len(first17) != 17 or any(ch not in _USCC_VALUE for ch in first17):
        raise ValueError("a USCC body is 17 characters of the GB 32100 alphabet")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    check = (31 - total % 31) % 31
    return USCC_ALPHABET[check]


def is_valid_uscc(value: str) -> bool:
    """True when ``value`` is an 18-character USCC with a correct check character."""
    value = value.upper()
    if len(value) != 18 or any(ch not in _USCC_VALUE for ch in value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    if not body.isdigit():
        raise ValueError("a card number is digits")
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_luhn(value: str) -> bool:
    """True when ``value`` (digits only) passes the Luhn check."""
    if len(value) < 2 or not value.isdigit():
        return False
    return luhn_check_digit(value[:-1]) == value[-1]
