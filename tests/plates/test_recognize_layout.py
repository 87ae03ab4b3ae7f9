"""Look-alike digits in the letter positions of known European plate layouts become letters."""

from __future__ import annotations

import pytest

from rtcc.plates.recognize import fix_layout


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("BA3020Z", "BA302OZ"),  # Slovak AA999AA: 0 in a letter position is O
        ("RK340A0", "RK340AO"),
        ("8B135B0", "BB135BO"),  # two look-alikes at most
        ("0Y09FEU", "OY09FEU"),  # British AA99AAA
        ("5K123AB", "SK123AB"),
    ],
)
def test_look_alike_digits_in_letter_positions_become_letters(read: str, expected: str) -> None:
    assert fix_layout(read) == expected


@pytest.mark.parametrize(
    "read",
    [
        "RK082AL",  # fits already
        "7KDR582",  # a Californian plate: no European layout
        "KMB0RAK",  # a letter in a digit position: a personalised plate, left alone
        "0812300",  # four changes needed: too many to be sure
        "AB1234",  # another length
        "",
    ],
)
def test_other_reads_are_left_alone(read: str) -> None:
    assert fix_layout(read) == read


def test_max_changes_bounds_the_corrections() -> None:
    assert fix_layout("8B135B0", max_changes=1) == "8B135B0"
    assert fix_layout("BB135B0", max_changes=1) == "BB135BO"
