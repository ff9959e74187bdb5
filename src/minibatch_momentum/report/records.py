"""The records of the claims report, and the one verdict rule.

A claim (:func:`claim_record`) is a list of checks (:func:`check_record`); each check
holds what was measured, what was predicted, the band it is judged against and whether it
passed (``True``, ``False``, or ``None`` when the data cannot decide it). Every claim of
the report is made of these records: the sweeps' claims (:mod:`.sweep_claims`, whose
checks also carry the bootstrap ``interval`` and whether it straddles the band,
``marginal``) and the seed systems' (:mod:`minibatch_momentum.studies`, whose undecided
checks say why in ``inconclusive_because``).
"""

from __future__ import annotations

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


def check_record(name, measured, predicted, tolerance, ok, reasons=(), **details) -> dict:
    """One check of a claim. ``ok``: True, False, or None when the data cannot decide it,
    ``reasons`` saying why (``inconclusive_because``); ``details`` follow in their order."""
    out = {
        "check": name,
        "measured": measured,
        "predicted": predicted,
        "tolerance": tolerance,
        "pass": ok,
        **details,
    }
    if reasons:
        out["inconclusive_because"] = "; ".join(reasons)
    return out


def verdict(checks: list[dict], undecided_first: bool = False) -> str:
    """PASS when every check passes; FAIL when one fails; INCONCLUSIVE when one cannot be
    decided.

    When a claim has both a failed and an undecided check, ``undecided_first`` decides:
    False (the sweeps' claims and C5/C6) makes it FAIL, since the failed check stands
    whatever the open one would show; True (the seed systems' claims with more than one
    check, S5, S6, S7) makes it INCONCLUSIVE, the claim judged only once all its checks
    can be. A claim of one check has the same verdict either way.
    """
    failed = any(c["pass"] is not None and not c["pass"] for c in checks)
    undecided = any(c["pass"] is None for c in checks)
    if undecided and (undecided_first or not failed):
        return INCONCLUSIVE
    return FAIL if failed else PASS


def claim_record(
    cid, statement, method, problem, sampler, checks, figure, source, undecided_first=False
) -> dict:
    """One claim of the report or of a seed study: its checks and their :func:`verdict`
    (``undecided_first`` as there)."""
    return {
        "id": cid,
        "statement": statement,
        "method": method,
        "problem": problem,
        "sampler": sampler,
        "verdict": verdict(checks, undecided_first),
        "checks": checks,
        "figure": figure,
        "source": source,
    }
