from django.db import migrations


class Migration(migrations.Migration):
    """Check every stored installment against installment_paid_at_iff_nothing_owed (added NOT
    VALID by 0012): a SHARE UPDATE EXCLUSIVE lock, so payments and sweeps go on meanwhile."""

    dependencies = [
        ("collections", "0012_installment_paid_at_iff_nothing_owed"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE collections_installment VALIDATE CONSTRAINT"
            " installment_paid_at_iff_nothing_owed",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
