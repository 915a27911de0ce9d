"""Call tasks: a ``call`` action puts a task, with its script, into the agents' queue (issue 4).

"Sent" means queued for an agent; the back office claims and closes tasks. Priority is the amount at
stake in whole currency units, so the queue works the largest balances first.
"""

from __future__ import annotations

from relance.cases.models import WorkItem
from relance.cases.queues import work_item_open
from relance.cases.selectors import case_outstanding_minor
from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.models import Action, CallTask
from relance.comms.render import render_message
from relance.tenancy.actors import Actor


class CallSender:
    def blocked(self, action: Action, debtor: Debtor) -> str:
        return "" if debtor.phone else "debtor has no phone number"

    def send(self, action: Action, context: SendContext) -> Sent:
        rendered = render_message(case=action.case, channel="call", template=action.template)
        case = action.case
        outstanding = case_outstanding_minor(case=case)
        task, _ = CallTask.objects.get_or_create(
            action=action, defaults={"case": case, "priority": outstanding // 100, "due_at": context.now}
        )
        # The agents' queue (issue 6): one work item per task, prioritised by amount, age and score.
        oldest_due = case.claims.order_by("due_date").values_list("due_date", flat=True).first()
        work_item_open(
            kind=WorkItem.Kind.CALL,
            source=f"calltask:{task.pk}",
            agency_id=case.creditor.agency_id,
            case=case,
            title=f"Call {case.reference}",
            amount_minor=outstanding,
            overdue_since=oldest_due,
            due_at=task.due_at,
            data={"script": rendered.text[:4000]},
            actor=Actor.system("call"),
        )
        return Sent(
            to_address=action.case.debtor.phone,
            subject="",
            body_text=rendered.text,
            body_html="",
            content_hash=rendered.content_hash,
            provider_message_id=f"call-task-{task.pk}",
        )
