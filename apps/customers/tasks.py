"""The customer login's work done after the answer, sent through the task outbox.

The login pages answer a customer's number and a stranger's with the same work: each
request enqueues one of these tasks, with ``customer_id`` or ``login_code_id`` None for a
stranger's number (the task then does nothing). Besides ids they carry the requester's
address and browser, for the audit event; never the number.
"""

from apps.core.actor import Actor, ActorType
from apps.core.tasks import app_task
from apps.customers.services import customer_login_code_send, customer_login_failure_record


def _customer_actor(actor_ip: str, actor_user_agent: str) -> Actor:
    return Actor(type=ActorType.CUSTOMER, ip=actor_ip or None, user_agent=actor_user_agent)


@app_task(name="customers.login_code_send", queue="notify")
def customer_login_code_send_task(
    *,
    lender_id: int,
    customer_id: int | None,
    request_key: str,
    actor_ip: str,
    actor_user_agent: str,
) -> None:
    """A login code by SMS for the customer (none for a stranger's number); once per
    ``request_key``."""
    if customer_id is None:
        return
    customer_login_code_send(
        customer_id=customer_id,
        request_key=request_key,
        actor=_customer_actor(actor_ip, actor_user_agent),
    )


@app_task(name="customers.login_failure_record", queue="default")
def customer_login_failure_record_task(
    *,
    lender_id: int,
    login_code_id: int | None,
    attempt: str,
    actor_ip: str,
    actor_user_agent: str,
) -> None:
    """A wrong code on the customer's login code (nothing for a stranger's number); once per
    ``attempt``."""
    if login_code_id is None:
        return
    customer_login_failure_record(
        login_code_id=login_code_id,
        attempt=attempt,
        actor=_customer_actor(actor_ip, actor_user_agent),
    )
