from apps.core.tasks import app_task


@app_task(name="audit.audit_chain_checkpoint_record")
def audit_chain_checkpoint_record() -> None:
    from apps.audit.services import audit_chain_checkpoint_record as checkpoint

    checkpoint()
