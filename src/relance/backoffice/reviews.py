"""Deciding a possible duplicate debtor from the review list: same person (merge) or keep apart."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _t
from django.views.decorators.http import require_POST

from relance.backoffice.views import _actor
from relance.intake.debtor_review import (
    DebtorMergeConflictError,
    DebtorReviewNotFoundError,
    debtor_review_keep_apart,
    debtor_review_merge,
)
from relance.tenancy.access import requires


@requires("debtors.merge")
@require_POST
def debtor_review_decide(request: HttpRequest, review_id: int) -> HttpResponse:
    """POST ``decision`` = ``same`` (merge into the known debtor) or ``distinct`` (keep apart)."""
    actor = _actor(request)
    decision = request.POST.get("decision")
    if decision not in ("same", "distinct"):
        raise Http404
    try:
        if decision == "same":
            survivor = debtor_review_merge(actor=actor, review_id=review_id)
            messages.success(request, _t("Merged into %(name)s.") % {"name": survivor.display_name})
        else:
            debtor_review_keep_apart(actor=actor, review_id=review_id)
            messages.success(request, _t("Kept apart: they will not be proposed again."))
    except DebtorReviewNotFoundError:
        raise Http404 from None
    except DebtorMergeConflictError:
        messages.error(request, _t("These two debtors cannot be merged automatically; nothing was changed."))
    return redirect("backoffice:debtor_reviews")
