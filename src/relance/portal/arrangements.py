"""Debtor portal: arrangements — instalment plan (with SEPA direct-debit mandate), promise, hardship.

Same rules as the case page: nothing before verification (``views._verified``), every write through
``payments.arrangements`` (policy, audit, FR-COL-12 proposal event), errors shown on their field.

Plan journey: choose months and first date → the schedule is shown (and whether it is accepted at
once or goes to an adviser) → how to pay (direct debit: holder, IBAN, mandate text, tick to sign;
or bank transfer) → confirmation with the schedule (the pre-notification of every debit, PAY-09)
and the mandate reference.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from relance.cases.models import Case
from relance.cases.selectors import case_outstanding_minor
from relance.core.errors import DomainError
from relance.core.money import Money, MoneyError
from relance.payments.arrangement_models import PaymentPlan
from relance.payments.arrangement_selectors import case_arrangements
from relance.payments.arrangements import (
    MandateIn,
    PlanQuote,
    hardship_declare,
    mandate_wording,
    plan_create,
    plan_quote,
    policy_for,
    promise_create,
    representation_notice,
    sepa_creditor_for,
)
from relance.payments.psp import card_payments_enabled
from relance.payments.schedule import Budget, first_due_window, max_months_for
from relance.portal.rendering import render
from relance.portal.views import _case_from_token, _locale, _verified
from relance.tenancy.actors import Actor

# Messages for the policy rules a request breaks (schedule.Violation.code).
_VIOLATIONS = {
    "plan.months_too_many": gettext_lazy("more months than can be accepted automatically"),
    "plan.instalment_too_small": gettext_lazy("instalments below the minimum amount"),
    "plan.first_due_window": gettext_lazy("a first payment date outside the window offered"),
    "promise.amount_range": gettext_lazy("Enter an amount between 0.01 and what you owe."),
    "promise.amount_too_small": gettext_lazy("This amount is below what can be accepted for a promise."),
    "promise.date_window": gettext_lazy("Choose a date within the period offered."),
}


class PlanForm(forms.Form):
    months = forms.IntegerField(label=gettext_lazy("Number of monthly payments"), min_value=1, max_value=36)
    first_due = forms.DateField(label=gettext_lazy("Date of the first payment"))


class PayPlanForm(PlanForm):
    METHODS: list[tuple[str, Any]] = [
        (PaymentPlan.Method.DIRECT_DEBIT.value, gettext_lazy("SEPA direct debit")),
        (PaymentPlan.Method.TRANSFER.value, gettext_lazy("Bank transfer each month")),
        (PaymentPlan.Method.CARD.value, gettext_lazy("Card each month, on this page")),
    ]
    method = forms.ChoiceField(label=gettext_lazy("How will you pay?"), choices=METHODS, widget=forms.RadioSelect)

    def clean_method(self) -> str:
        value = str(self.cleaned_data["method"])
        if value == PaymentPlan.Method.CARD and not card_payments_enabled():
            raise forms.ValidationError(_("Card payments are not available."))
        return value

    debtor_name = forms.CharField(label=gettext_lazy("Account holder"), max_length=70, required=False)
    iban = forms.CharField(label=gettext_lazy("IBAN"), max_length=42, required=False)
    accepted = forms.BooleanField(label=gettext_lazy("I sign this mandate"), required=False)


class PromiseForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("I will pay on"))
    amount = forms.CharField(label=gettext_lazy("Amount"), max_length=20)


class HardshipForm(forms.Form):
    income = forms.CharField(label=gettext_lazy("Monthly income of your household"), max_length=20)
    fixed_charges = forms.CharField(
        label=gettext_lazy("Monthly fixed charges (rent, loans, energy, insurance)"), max_length=20
    )
    dependants = forms.IntegerField(label=gettext_lazy("Number of dependants"), min_value=0, max_value=20)
    vulnerable = forms.BooleanField(
        label=gettext_lazy(
            "My situation is difficult (illness, job loss, bereavement…): I would like an adviser to contact me"
        ),
        required=False,
    )
    note = forms.CharField(
        label=gettext_lazy("Anything you wish to tell us (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _verified_case(request: HttpRequest, token: str) -> Case | None:
    case = _case_from_token(token)
    return case if _verified(request, case) else None


def _field_error(form: forms.Form, exc: DomainError) -> None:
    field = exc.fields.get("field")
    codes = exc.fields.get("violations") or []
    message = " ".join(str(_VIOLATIONS[c]) for c in codes if c in _VIOLATIONS) or exc.message
    form.add_error(field if field in form.fields else None, message)


def _schedule_rows(quote: PlanQuote, locale: str) -> list[dict[str, Any]]:
    return [
        {"number": i.number, "due": i.due, "amount": Money(i.amount_minor, quote.currency).format(locale)}
        for i in quote.instalments
    ]


def _plan_context(case: Case, request: HttpRequest, token: str) -> dict[str, Any]:
    today = timezone.localdate()
    policy = policy_for(case.creditor)
    outstanding = case_outstanding_minor(case=case)
    earliest, latest = first_due_window(today, policy)
    locale = _locale(request)
    return {
        "token": token,
        "case": case,
        "creditor": case.creditor,
        "outstanding": Money(outstanding, case.currency).format(locale),
        "max_months": max_months_for(outstanding, policy),
        "min_instalment": Money(policy.min_instalment_minor, case.currency).format(locale),
        "earliest": earliest,
        "latest": latest,
        "direct_debit": case.currency == "EUR" and sepa_creditor_for(case.creditor.agency) is not None,
    }


@require_http_methods(["GET", "POST"])
def plan(request: HttpRequest, token: str) -> HttpResponse:
    """Steps 1 and 2: choose months and date; see the schedule and how to pay."""
    case = _verified_case(request, token)
    if case is None:
        return redirect("portal:entry", token=token)
    context = _plan_context(case, request, token)
    if case_outstanding_minor(case=case) <= 0:
        return redirect("portal:case", token=token)
    existing = case_arrangements(actor=Actor.for_debtor(case_id=case.pk), case_id=case.pk).plan
    if existing is not None and existing.status in {PaymentPlan.Status.PROPOSED, PaymentPlan.Status.ACTIVE}:
        return redirect("portal:plan_done", token=token)
    initial = {"months": request.GET.get("months") or min(3, context["max_months"]), "first_due": context["earliest"]}
    form = PlanForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            quote = plan_quote(
                case=case,
                months=form.cleaned_data["months"],
                first_due=form.cleaned_data["first_due"],
                today=timezone.localdate(),
            )
        except DomainError as exc:
            _field_error(form, exc)
        else:
            return _pay_step(request, case, context, quote, PayPlanForm(initial=_pay_initial(case, quote)))
    return render(request, "portal/arrangements_plan.html", {**context, "form": form})


def _pay_initial(case: Case, quote: PlanQuote) -> dict[str, Any]:
    return {"months": quote.months, "first_due": quote.first_due, "method": PaymentPlan.Method.DIRECT_DEBIT}


def _pay_step(
    request: HttpRequest, case: Case, context: dict[str, Any], quote: PlanQuote, form: PayPlanForm
) -> HttpResponse:
    locale = _locale(request)
    method = form.fields["method"]
    assert isinstance(method, forms.ChoiceField)  # noqa: S101 - narrows the type
    offered: dict[str, bool] = {
        PaymentPlan.Method.DIRECT_DEBIT.value: bool(context["direct_debit"]),
        PaymentPlan.Method.TRANSFER.value: True,
        PaymentPlan.Method.CARD.value: card_payments_enabled(),  # only where a card provider is configured
    }
    method.choices = [(value, label) for value, label in PayPlanForm.METHODS if offered.get(str(value), False)]
    if not context["direct_debit"]:
        form.initial["method"] = PaymentPlan.Method.TRANSFER
    return render(
        request,
        "portal/arrangements_plan_pay.html",
        {
            **context,
            "form": form,
            "quote": quote,
            "schedule": _schedule_rows(quote, locale),
            "instalment": Money(quote.instalments[0].amount_minor, quote.currency).format(locale),
            "violations": [str(_VIOLATIONS[v.code]) for v in quote.violations],
            "wording": mandate_wording(case.creditor.agency.legal_name),
            "representation_notice": representation_notice(),
            "agency": case.creditor.agency,
        },
    )


@require_http_methods(["POST"])
def plan_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Step 3: create the plan (and sign the mandate) in one transaction."""
    case = _verified_case(request, token)
    if case is None:
        return redirect("portal:entry", token=token)
    context = _plan_context(case, request, token)
    form = PayPlanForm(request.POST)
    if not form.is_valid():
        months, first_due = form.cleaned_data.get("months"), form.cleaned_data.get("first_due")
        if months is None or first_due is None:
            return redirect("portal:plan", token=token)
        quote = plan_quote(case=case, months=months, first_due=first_due, today=timezone.localdate())
        return _pay_step(request, case, context, quote, form)
    data = form.cleaned_data
    signature = None
    if data["method"] == PaymentPlan.Method.DIRECT_DEBIT:
        signature = MandateIn(
            debtor_name=data["debtor_name"],
            iban=data["iban"],
            accepted=data["accepted"],
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
        )
    try:
        plan_create(
            case=case,
            months=data["months"],
            first_due=data["first_due"],
            method=data["method"],
            mandate=signature,
            actor=Actor.for_debtor(case_id=case.pk),
        )
    except DomainError as exc:
        _field_error(form, exc)
        quote = plan_quote(case=case, months=data["months"], first_due=data["first_due"], today=timezone.localdate())
        return _pay_step(request, case, context, quote, form)
    return redirect("portal:plan_done", token=token)


@require_http_methods(["GET"])
def plan_done(request: HttpRequest, token: str) -> HttpResponse:
    """The plan, its schedule and the mandate: the debtor's record and the debits' pre-notification."""
    case = _verified_case(request, token)
    if case is None:
        return redirect("portal:entry", token=token)
    found = case_arrangements(actor=Actor.for_debtor(case_id=case.pk), case_id=case.pk)
    if found.plan is None:
        return redirect("portal:plan", token=token)
    locale = _locale(request)
    return render(
        request,
        "portal/arrangements_plan_done.html",
        {
            "token": token,
            "case": case,
            "creditor": case.creditor,
            "plan": found.plan,
            "mandate": found.mandate,
            "iban_end": found.mandate.iban[-4:] if found.mandate else "",
            "representation_notice": representation_notice(),
            "schedule": [
                {"i": i, "amount": Money(i.amount_minor, found.plan.currency).format(locale)} for i in found.instalments
            ],
            "total": Money(found.plan.total_minor, found.plan.currency).format(locale),
            # Card plans: the debtor pays each instalment by card from here (any payment counts).
            "card_next": next((i for i in found.instalments if i.status != i.Status.PAID), None)
            if found.plan.method == PaymentPlan.Method.CARD and card_payments_enabled()
            else None,
        },
    )


@require_http_methods(["GET", "POST"])
def promise(request: HttpRequest, token: str) -> HttpResponse:
    """Promise to pay an amount by a date, within the creditor's policy."""
    case = _verified_case(request, token)
    if case is None:
        return redirect("portal:entry", token=token)
    today = timezone.localdate()
    policy = policy_for(case.creditor)
    outstanding = Money(case_outstanding_minor(case=case), case.currency)
    if outstanding.minor <= 0:
        return redirect("portal:case", token=token)
    locale = _locale(request)
    form = PromiseForm(request.POST or None, initial={"amount": outstanding.to_decimal()})
    if request.method == "POST" and form.is_valid():
        try:
            amount = Money.parse(form.cleaned_data["amount"], case.currency)
        except MoneyError:
            form.add_error("amount", _("Enter an amount such as 45.90."))
        else:
            try:
                promise_create(
                    case=case, on=form.cleaned_data["on"], amount=amount, actor=Actor.for_debtor(case_id=case.pk)
                )
            except DomainError as exc:
                _field_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Thank you: we have noted your promise to pay %(amount)s by %(date)s.")
                    % {"amount": amount.format(locale), "date": form.cleaned_data["on"].strftime("%d/%m/%Y")},
                )
                return redirect("portal:case", token=token)
    return render(
        request,
        "portal/arrangements_promise.html",
        {
            "token": token,
            "case": case,
            "creditor": case.creditor,
            "form": form,
            "outstanding": outstanding.format(locale),
            "earliest": today + timedelta(days=1),
            "latest": today + timedelta(days=policy.promise_within_days),
            "min_percent": policy.promise_min_percent,
        },
    )


@require_http_methods(["GET", "POST"])
def hardship(request: HttpRequest, token: str) -> HttpResponse:
    """A short budget → the plan the debtor can afford; a difficult situation goes to an adviser."""
    case = _verified_case(request, token)
    if case is None:
        return redirect("portal:entry", token=token)
    if case_outstanding_minor(case=case) <= 0:
        return redirect("portal:case", token=token)
    locale = _locale(request)
    form = HardshipForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        amounts: dict[str, int] = {}
        for name in ("income", "fixed_charges"):
            try:
                amounts[name] = Money.parse(form.cleaned_data[name], case.currency).minor
            except MoneyError:
                form.add_error(name, _("Enter an amount such as 1450 or 1450.50."))
        if not form.errors:
            try:
                outcome = hardship_declare(
                    case=case,
                    budget=Budget(amounts["income"], amounts["fixed_charges"], form.cleaned_data["dependants"]),
                    vulnerable=form.cleaned_data["vulnerable"],
                    note=form.cleaned_data["note"],
                    actor=Actor.for_debtor(case_id=case.pk),
                )
            except DomainError as exc:
                _field_error(form, exc)
            else:
                proposal = outcome.plan
                return render(
                    request,
                    "portal/arrangements_hardship_result.html",
                    {
                        "token": token,
                        "case": case,
                        "creditor": case.creditor,
                        "statement": outcome.statement,
                        "proposal": proposal,
                        "first_due": outcome.first_due,
                        "instalment": Money(proposal.instalments[0].amount_minor, case.currency).format(locale),
                        "capacity": Money(proposal.capacity_minor, case.currency).format(locale),
                        "flagged": outcome.statement.status == "to_review",
                    },
                )
    return render(
        request,
        "portal/arrangements_hardship.html",
        {"token": token, "case": case, "creditor": case.creditor, "form": form},
    )
