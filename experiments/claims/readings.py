"""The suite's readings of the claims' vague words, as named values.

Where a claim gives no number ("a large speedup", "drastically improves"), a verdict
needs one; each reading below is that number, named once, used by the claim's code and
stated in the paper (``stated()``), so that a reader sees what a verdict rests on and
another reading is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """``value`` is what the suite takes ``word`` in claim ``claim_id`` to mean; ``meaning`` says it in
    words, with ``{value}`` where the number goes."""

    claim_id: str
    word: str
    value: float
    meaning: str

    @property
    def text(self) -> str:
        """``S8 'large' = at least 2x``: the reading as the paper states it."""
        return f"{self.claim_id} '{self.word}' = {self.meaning.format(value=f'{self.value:g}')}"


# -- stated in the paper (``stated()``) --------------------------------------------------------------
S8_LARGE = Reading("S8", "large", 2.0, "at least {value}x")
L12_DRASTICALLY = Reading("L12", "drastically", 2.0, "at least {value}x lower error")
L1_VANISHED = Reading("L1", "vanished", 0.1, "a ratio under {value}")
L4_COMPARABLE = Reading("L4", "comparable", 0.03, "an error gap under {value}")

# -- the other words the claims leave open, stated in each claim's own text ---------------------------
L6_NO_GAIN = Reading("L6", "not on short ones", 0.03, "an accuracy gain under {value}")
L9_PLATEAU = Reading("L9", "plateaus", 0.02, "an accuracy change within +-{value}")
L9_LEARNT = Reading("L9", "learnt", 0.05, "an accuracy at least {value} above the trivial baseline")
L11_SOUND = Reading("L11", "sound", 0.02, "no accuracy loss beyond {value}")
L7_ACF_LENGTH = Reading(
    "L7", "autocorrelation length", 0.2, "the first lag where the autocorrelation drops below {value}"
)
L13_CONVERGES = Reading("L13", "converges", 0.5, "an error at most {value} of the trivial baseline's")
L16_DIMINISHING = Reading("L16", "diminishing returns", 0.01, "an error reduction under {value}")

STATED: tuple[Reading, ...] = (S8_LARGE, L12_DRASTICALLY, L1_VANISHED, L4_COMPARABLE)
READINGS: tuple[Reading, ...] = (
    *STATED,
    L6_NO_GAIN,
    L7_ACF_LENGTH,
    L9_PLATEAU,
    L9_LEARNT,
    L11_SOUND,
    L13_CONVERGES,
    L16_DIMINISHING,
)


def stated() -> str:
    """The readings the paper names where a claim gives no number, in one line."""
    return "; ".join(r.text for r in STATED)
