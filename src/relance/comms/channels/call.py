"""Call tasks: a ``call`` action puts a task, with its script, into the agents' queue (issue 4).

"Sent" means queued for an agent; the back office claims and closes tasks. Priority is the amount at
stake in whole currency units, so the queue works the largest balances first.
"""

from __future__ import annotations

from relance.cases.selectors import case_outstanding_minor
from relance.claims.models import Debtor
from relance.comms.channels.base import SendContext, Sent
from relance.comms.models import Action, CallTask
from relance.comms.render import render_message


class CallSender:
    def blocked(self, action: Action, debtor: Debtor) -> str:
        return "" if debtor.phone else "debtor has no phone number"

    def send(self, action: Action, context: SendContext) -> Sent:
        rendered = render_message(case=action.case, channel="call", template=action.template)
        task, _ = CallTask.objects.get_or_create(
            action=action,
            defaults={
                "case": action.case,
                "priority": case_outstanding_minor(case=action.case) // 100,
                "due_at": context.now,
            },
        )
        return Sent(
            to_address=action.case.debtor.phone,
            subject="",
            body_text=rendered.text,
            body_html="",
            content_hash=rendered.content_hash,
            provider_message_id=f"call-task-{task.pk}",
        )
