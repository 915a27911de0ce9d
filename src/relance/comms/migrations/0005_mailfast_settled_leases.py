"""Clear the lease of every settled action (issue 4, e-mail speed).

From now on a dispatcher clears an action's lease when it writes the audit event of its outcome, and
a sent e-mail whose lease is still set is one whose ``action.sent`` event is still to be written
(``outbox_recover`` writes it). Before, a sent action kept its lease: clear those, their events exist.
A partial index keeps recovery's look at leased actions small.
"""

from django.db import migrations, models


def clear(apps, schema_editor):  # type: ignore[no-untyped-def]
    action = apps.get_model("comms", "Action")
    action.objects.exclude(status__in=("queued", "sending", "handover")).exclude(lease="").update(lease="")


class Migration(migrations.Migration):
    dependencies = [("comms", "0004_merge_engineops_strategies")]

    operations = [
        migrations.RunPython(clear, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="action",
            index=models.Index(condition=~models.Q(lease=""), fields=["updated_at"], name="action_leased"),
        ),
    ]
