from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    """The fee run's index, built without blocking writes (a failed build leaves an INVALID
    index to drop by hand before running this again)."""

    atomic = False

    dependencies = [
        ("collections", "0014_installment_late_from_and_fee_charged"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="installment",
            index=models.Index(
                condition=models.Q(("late_fee_charged__isnull", True)),
                fields=["lender", "late_from"],
                name="installment_fee_not_reached",
            ),
        ),
    ]
