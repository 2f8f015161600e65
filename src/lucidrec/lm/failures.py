"""The rule every LLM stage follows: an item the model left without an answer (after the backend's
retries and any re-asks) is an error, unless the user allowed a share of them to fall back.

A stage asks the model for many items (item scores, user priors, ...), then calls
:func:`require_answers` with how many are still missing. Above the allowed share it raises
:class:`LLMStageError`, naming the stage, the count and where the answers should have come from;
the answers received are already in the response cache, so a rerun asks only for the missing ones.
At or below it the fallback is logged and the stage goes on.
"""

from __future__ import annotations

import logging

from lucidrec.lm.errors import LMError

log = logging.getLogger(__name__)


class LLMStageError(LMError):
    """Too many items of an LLM stage got no answer."""

    def __init__(self, message: str, *, failed: int, total: int):
        self.failed, self.total = failed, total
        super().__init__(message)


def require_answers(stage: str, failed: int, total: int, *, allowed_share: float, endpoint: str, unit: str,
                    first_error: object | None, setting: str, fallback: str) -> None:
    """Raise :class:`LLMStageError` when ``failed / total`` exceeds ``allowed_share``; else log the fallback.

    ``setting`` names the option that raises the share and ``fallback`` what the missing items get.
    """
    if failed <= 0 or total <= 0:
        return
    share = failed / total
    cause = f" (first error: {first_error})" if first_error else ""
    what = f"{stage}: {failed} of {total} {unit} got no score from {endpoint} after retries{cause}"
    if share > allowed_share:
        if failed == total:
            advice = f"nothing was answered: check that {endpoint} is reachable and serves this model, then rerun"
        else:
            advice = (f"the {total - failed} answers received are cached, so a rerun asks only for the missing "
                      f"ones; to go on with {fallback} for them, set {setting} to {share:.3g} or more "
                      f"(the share of {unit} allowed to fall back; now {allowed_share:g})")
        raise LLMStageError(f"{what}. {advice[0].upper()}{advice[1:]}", failed=failed, total=total)
    log.warning("%s; they fall back to %s (%s=%g allows it)", what, fallback, setting, allowed_share)
