from django.db import migrations, models

# Format 2 of the event hash is computed by the database as events are appended:
# audit_chain_hash(line, start) OVER (ORDER BY seq) is the running hash of a chain
# from ``start`` (the head's hash), each step the SHA-256 of the event's line and
# the previous hash as a length-prefixed field (apps/audit/hashing.py).
STEP = """
CREATE FUNCTION audit_chain_step(state text, line text, start text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    prev text := coalesce(state, start);
BEGIN
    RETURN encode(sha256(convert_to(line || '|' || length(prev) || ':' || prev, 'UTF8')), 'hex');
END
$$;
CREATE AGGREGATE audit_chain_hash(text, text) (SFUNC = audit_chain_step, STYPE = text);
"""

DROP = """
DROP AGGREGATE audit_chain_hash(text, text);
DROP FUNCTION audit_chain_step(text, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_fewer_indexes")]

    operations = [
        # existing rows are format 1 (adding a column with a default updates no row,
        # so the append-only trigger is not involved); new rows default to 2
        migrations.AddField(
            model_name="auditevent",
            name="format",
            field=models.PositiveSmallIntegerField(db_default=1),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="format",
            field=models.PositiveSmallIntegerField(db_default=2),
        ),
        migrations.RunSQL(STEP, DROP),
    ]
