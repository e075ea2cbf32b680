"""Security cases: Polyglot prefixes, HDF5 user blocks, members Keras ignores, zip details and the duplicate-npz proof of concept (issue 14 items 3, 4, 7, 10).

Each Case (tests/security/kit.py) is an attack made from a real file, with its benign twin; BASES are
the extra real files these cases start from (name -> builder(out_dir) -> path), saved once per run.
"""

from __future__ import annotations

from tests.security.kit import Case  # noqa: F401

BASES: dict = {}
CASES: list = []
