"""KDD Cup 1999 vocabulary: the 41 feature names and the attack → category map.

The feature names come from :mod:`windowing.kdd`; the attack map is a copy of the
dataset's ``training_attack_types.txt`` (UCI KDD archive), shipped with the package so
evaluation works on any machine that has the data files, and tests never need the
original folder.
"""

from __future__ import annotations

from windowing.kdd import CATEGORICAL_FIELDS, KDD_FIELDS

__all__ = [
    "ATTACK_CATEGORIES",
    "CATEGORIES",
    "KDD_COLUMNS",
    "NORMAL_LABEL",
    "SYMBOLIC_COLUMNS",
    "category_of",
    "normalize_label",
]

#: The 41 features, in file order (the 42nd field of a row is the label).
KDD_COLUMNS: tuple[str, ...] = KDD_FIELDS

#: Text-valued features (the 0/1 flags ``land``, ``logged_in``... are numeric in the files).
SYMBOLIC_COLUMNS: tuple[str, ...] = CATEGORICAL_FIELDS

NORMAL_LABEL = "normal"

#: ``training_attack_types.txt``: attack name → category.
ATTACK_CATEGORIES: dict[str, str] = {
    "back": "dos",
    "buffer_overflow": "u2r",
    "ftp_write": "r2l",
    "guess_passwd": "r2l",
    "imap": "r2l",
    "ipsweep": "probe",
    "land": "dos",
    "loadmodule": "u2r",
    "multihop": "r2l",
    "neptune": "dos",
    "nmap": "probe",
    "perl": "u2r",
    "phf": "r2l",
    "pod": "dos",
    "portsweep": "probe",
    "rootkit": "u2r",
    "satan": "probe",
    "smurf": "dos",
    "spy": "r2l",
    "teardrop": "dos",
    "warezclient": "r2l",
    "warezmaster": "r2l",
}

#: Every category a row can get, ``unknown`` for attacks missing from the map.
CATEGORIES: tuple[str, ...] = ("normal", "dos", "probe", "r2l", "u2r", "unknown")


def normalize_label(raw: str) -> str:
    """Strip the trailing dot and whitespace KDD puts on labels.

    >>> normalize_label(" smurf. ")
    'smurf'
    """
    return raw.strip().rstrip(".")


def category_of(label: str) -> str:
    """``normal``, the attack's category, or ``unknown`` (attacks only in test files).

    >>> category_of("normal."), category_of("neptune"), category_of("apache2.")
    ('normal', 'dos', 'unknown')
    """
    name = normalize_label(label)
    if name == NORMAL_LABEL:
        return "normal"
    return ATTACK_CATEGORIES.get(name, "unknown")
