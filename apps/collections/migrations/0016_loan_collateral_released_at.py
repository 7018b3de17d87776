from django.db import migrations, models

# Backfill: a paid-off loan released its phone when it was paid off. A loan that is no longer
# paid off (a chargeback reopened it) released it when its phone was first given the
# ``released`` state; such a loan is off the ladder from now on, and the stage the sweep gave it
# since (which its phone could never take) is cleared by the next sweep, with its history row
# and audit event (``_RELEASED_LOWER``).
RELEASED_AT = """
UPDATE collections_loan AS l SET collateral_released_at = l.paid_off_at
WHERE l.status = 'paid_off' AND l.collateral_released_at IS NULL;
UPDATE collections_loan AS l SET collateral_released_at = r.first
FROM (SELECT d.loan_id, min(s.created_at) AS first
      FROM devices_devicestate AS s JOIN devices_device AS d ON d.id = s.device_id
      WHERE s.level = 'released' GROUP BY d.loan_id) AS r
WHERE r.loan_id = l.id AND l.collateral_released_at IS NULL;
"""


class Migration(migrations.Migration):
    """A loan remembers that its phone was released at payoff (forward backfill above;
    backward: the column is dropped)."""

    dependencies = [
        ("collections", "0015_installment_fee_not_reached_index"),
        ("devices", "0009_state_released_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="loan",
            name="collateral_released_at",
            field=models.DateTimeField(
                blank=True,
                help_text="The phone was released for good at payoff; the loan can never restrict it.",
                null=True,
                verbose_name="phone released at",
            ),
        ),
        migrations.RunSQL(RELEASED_AT, reverse_sql=migrations.RunSQL.noop),
        # small (active loans whose phone was released): built in the migration's lock. Its
        # predicate names no column the sweep writes, so raising a stage stays a HOT update
        migrations.AddIndex(
            model_name="loan",
            index=models.Index(
                condition=models.Q(("collateral_released_at__isnull", False), ("status", "active")),
                fields=["lender", "id"],
                name="loan_released_active",
            ),
        ),
    ]
