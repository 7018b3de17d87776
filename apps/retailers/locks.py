"""Row locks for retailers. A sale at the counter is locked before the loan it signs, so a
double submit or a retry of any step waits here and then sees the first one's result."""

from apps.core.errors import NotFound
from apps.retailers.errors import SaleAlreadySigned
from apps.retailers.models import Clerk, Sale


def sale_lock(*, sale_id: int, clerk: Clerk) -> Sale:
    """Lock a sale of the clerk's shop; NotFound for any other shop's, as for no sale at all."""
    sale = (
        Sale.objects.select_for_update(of=("self",))
        .filter(pk=sale_id, shop_id=clerk.shop_id)
        .first()
    )
    if sale is None:
        raise NotFound(sale_id=sale_id)
    return sale


def sale_lock_open(*, sale_id: int, clerk: Clerk) -> Sale:
    """``sale_lock``, refusing a signed sale (SaleAlreadySigned): its terms are final."""
    sale = sale_lock(sale_id=sale_id, clerk=clerk)
    if sale.loan_id is not None:
        raise SaleAlreadySigned(loan_id=sale.loan_id)
    return sale
