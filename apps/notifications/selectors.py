from apps.notifications.models import Notification


def notices_pending(*, loan_id: int) -> list[Notification]:
    """What the phone should show now (the agent's check-in hands them over)."""
    return list(
        Notification.objects.filter(loan_id=loan_id, status=Notification.Status.PUSHED).order_by(
            "pushed_at", "id"
        )
    )
