from django.db import migrations, models

# When each stored installment became (or becomes) late: the start of the lender's local day
# after its due date and the loan's grace days, as loan_sign now computes it.
LATE_FROM = """
UPDATE collections_installment AS i
SET late_from = ((i.due_date + l.grace_days + 1)::timestamp AT TIME ZONE le.timezone)
FROM collections_loan AS l JOIN lenders_lender AS le ON le.id = l.lender_id
WHERE l.id = i.loan_id
"""
# What the fee run had decided for each installment, in the new terms: a fee it assessed is
# the fee charged if late; an installment it passed over because it was paid is decided with
# no fee (0), so the new run does not reach back and charge one now; a loan without a late fee
# charges none. The rest (not yet late, or late and unpaid) wait for the new run.
FEE_CHARGED = """
UPDATE collections_installment AS i SET late_fee_charged = i.late_fee_amount
WHERE i.late_fee_assessed_at IS NOT NULL;
UPDATE collections_installment AS i SET late_fee_charged = 0
FROM collections_loan AS l
WHERE l.id = i.loan_id AND i.late_fee_charged IS NULL
  AND (l.late_fee_type = 'none' OR (i.paid_at IS NOT NULL AND i.late_from <= now()));
"""


class Migration(migrations.Migration):
    """Late fees follow when money was received (backfill of two new installment columns).

    Forward: ``late_from`` is computed for every row, then made NOT NULL;
    ``late_fee_charged`` is filled as described above. Every installment row is
    rewritten once (the trigger that marks loans fires on paid_at, due_date and
    loan only, so loans are not touched). Backward: both columns are dropped;
    the fees and payments stored are those of the last replay and stay right
    under the old code.
    """

    dependencies = [
        ("collections", "0013_installment_paid_at_check_validated"),
    ]

    operations = [
        # every installment row is rewritten and the table's lock held until the end: wait at
        # most 5 s to start behind a payment or a sweep, then fail (run it again). Migrate
        # before starting the new code; the old code cannot sign a loan once late_from is
        # required, so deploy it right after.
        migrations.RunSQL("SET LOCAL lock_timeout = '5s'", reverse_sql=migrations.RunSQL.noop),
        migrations.AddField(
            model_name="installment",
            name="late_fee_charged",
            field=models.DecimalField(
                blank=True, decimal_places=3, max_digits=18, null=True,
                verbose_name="late fee if late",
            ),
        ),
        migrations.AddField(
            model_name="installment",
            name="late_from",
            field=models.DateTimeField(null=True, verbose_name="late from"),
        ),
        migrations.RunSQL(LATE_FROM, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(FEE_CHARGED, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="installment",
            name="late_from",
            field=models.DateTimeField(verbose_name="late from"),
        ),
    ]
