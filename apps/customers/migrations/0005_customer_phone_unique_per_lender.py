"""One customer per mobile number at each lender.

The self-service login finds the customer by number, so two customers of a lender on one
number would let one of them see the other's loans. Rows made before this rule may share a
number. PostgreSQL cannot add a UNIQUE constraint NOT VALID (only CHECK and foreign keys
can be), and a partial index over new rows only would leave the login ambiguous for old
ones; merging or renumbering customers here would guess which person a number belongs to.
So the migration first checks: if any lender has customers sharing a number it stops
before changing anything and names them (ids, the lender, the number's last 3 digits),
and an operator gives each their own number (``manage.py customer_phone_change``, audited)
and runs migrate again. The check and the index are built in one transaction; the index
build blocks writes to the table for its duration (seconds for a million customers).

Reverse: the constraint is dropped; the check has nothing to undo.
"""

from django.db import connections, migrations, models

SHOWN = 20  # groups named in the message; the rest are counted

SHARED = """
    SELECT l.slug, right(c.phone, 3), array_agg(c.id ORDER BY c.id)
    FROM customers_customer AS c JOIN lenders_lender AS l ON l.id = c.lender_id
    GROUP BY l.slug, c.lender_id, c.phone
    HAVING count(*) > 1
    ORDER BY l.slug, min(c.id)
"""


class SharedNumbers(RuntimeError):
    pass


def refuse_shared_numbers(apps, schema_editor):
    alias = apps.get_model("customers", "Customer").objects.db
    with connections[alias].cursor() as cursor:
        cursor.execute(SHARED)
        groups = cursor.fetchall()
    if not groups:
        return
    lines = [
        f"  lender {slug}: customers {', '.join(map(str, ids))} (number ending {last3})"
        for slug, last3, ids in groups[:SHOWN]
    ]
    if len(groups) > SHOWN:
        lines.append(f"  ... and {len(groups) - SHOWN} more numbers")
    raise SharedNumbers(
        f"{len(groups)} mobile number(s) are each shared by several customers of one lender, "
        "and from now on a number belongs to one customer of a lender (customers.0005). "
        "Nothing was changed. Give each customer below their own number with\n"
        '  python manage.py customer_phone_change <customer id> <number> --reason "..."\n'
        "then run migrate again. Customers who share a mobile number:\n" + "\n".join(lines)
    )


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0004_customer_login_code"),
        ("lenders", "0003_restriction_policy"),
    ]

    operations = [
        migrations.RunPython(refuse_shared_numbers, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                fields=("lender", "phone"), name="customer_phone_unique_per_lender"
            ),
        ),
    ]
