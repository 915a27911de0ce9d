"""The outbox's case index folded into its unique (case, step_key) index (docs/decisions/0009).

A step-less action's key becomes NULL (it was ""), so the unique index can hold every action and
serve every lookup by case; the separate ``case_id`` index goes. Same uniqueness: a case never gets
the same strategy step twice; step-less actions never collided and still do not (NULLs are distinct).
"""

import django.db.models.deletion
from django.db import migrations, models


def _empty_to_null(apps, schema_editor):
    apps.get_model("comms", "Action").objects.filter(step_key="").update(step_key=None)


def _null_to_empty(apps, schema_editor):
    apps.get_model("comms", "Action").objects.filter(step_key__isnull=True).update(step_key="")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0006_engine5_assignee_partial_index"),
        ("claims", "0007_lead_debtor_identifiers_invoice_index"),
        ("comms", "0006_engfast2_drop_unread_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="action",
            name="step_key",
            field=models.CharField(blank=True, default=None, max_length=120, null=True),
        ),
        migrations.RunPython(_empty_to_null, _null_to_empty),
        migrations.RemoveConstraint(model_name="action", name="action_unique_step"),
        migrations.AddConstraint(
            model_name="action",
            constraint=models.UniqueConstraint(fields=("case", "step_key"), name="action_unique_step"),
        ),
        migrations.AlterField(
            model_name="action",
            name="case",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="actions",
                to="cases.case",
            ),
        ),
    ]
