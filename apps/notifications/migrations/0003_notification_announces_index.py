from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    """The announcement check validated over the stored rows, and the sweep's index of
    announcing notices, both without blocking writes (a failed index build leaves an INVALID
    index to drop by hand before running this again)."""

    atomic = False

    dependencies = [
        ("notifications", "0002_notification_announces"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE notifications_notification VALIDATE CONSTRAINT"
            " notification_announces_a_date",
            reverse_sql=migrations.RunSQL.noop,
        ),
        AddIndexConcurrently(
            model_name="notification",
            index=models.Index(
                condition=~models.Q(announces_stage=""),
                fields=["loan", "created_at"],
                name="notification_announces",
            ),
        ),
    ]
