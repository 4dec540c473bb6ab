"""Bad inputs of reliability round 3 (issue 42), tools: cases in the form of tests/bad_inputs.py.

bad_inputs.py adds these to its CASES at its end (import bad_inputs, not this module, first).
"""

from __future__ import annotations

from bad_inputs import Case

CASES: list[Case] = []
