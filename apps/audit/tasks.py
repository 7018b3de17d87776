from apps.audit.services import audit_chain_checkpoint_record
from apps.core.tasks import app_task


@app_task(name="audit.audit_chain_checkpoint_record")
def audit_chain_checkpoint_record_task() -> None:
    audit_chain_checkpoint_record()
