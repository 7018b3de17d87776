from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    """The sweep's index of announcing notices, built without blocking writes (a failed build
    leaves an INVALID index to drop by hand before running this again)."""

    atomic = False

    dependencies = [
        ("notifications", "0002_notification_announces"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="notification",
            index=models.Index(
                condition=~models.Q(announces_stage=""),
                fields=["loan", "created_at"],
                name="notification_announces",
            ),
        ),
    ]
