"""The forms on a case page for agents (issue 6): one per action, each with its own prefix."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from relance.comms.calls import CallResult
from relance.strategies.selectors import strategy_latest_versions


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


class NoteForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class CallForm(forms.Form):
    result = forms.ChoiceField(label=gettext_lazy("Result"), choices=CallResult.choices)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000)
    callback_at = forms.DateTimeField(
        label=gettext_lazy("Call back at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class PromiseForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("Promised date"), widget=forms.DateInput(attrs={"type": "date"}))
    amount = forms.CharField(label=gettext_lazy("Amount (EUR)"), max_length=20)


class PlanForm(forms.Form):
    months = forms.IntegerField(label=gettext_lazy("Number of monthly instalments"), min_value=1, max_value=120)
    first_due = forms.DateField(
        label=gettext_lazy("First instalment on"), widget=forms.DateInput(attrs={"type": "date"})
    )


class HoldForm(forms.Form):
    until = forms.DateField(label=gettext_lazy("Hold until"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


class DiscountForm(forms.Form):
    amount = forms.CharField(label=gettext_lazy("Discount (EUR)"), max_length=20)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


class StrategyForm(forms.Form):
    key = forms.ChoiceField(label=gettext_lazy("Strategy"), choices=[])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].choices = [  # type: ignore[attr-defined]
            (s.key, f"{s.name} ({s.key} v{s.version})") for s in strategy_latest_versions()
        ]


CASE_FORMS: dict[str, type[forms.Form]] = {
    "note": NoteForm,
    "call": CallForm,
    "promise": PromiseForm,
    "plan": PlanForm,
    "hold": HoldForm,
    "resume": forms.Form,
    "strategy": StrategyForm,
    "discount": DiscountForm,
    "return": ReasonForm,
    "write_off": ReasonForm,
}


def case_forms() -> dict[str, forms.Form]:
    return {name: form_class(prefix=name) for name, form_class in CASE_FORMS.items()}
