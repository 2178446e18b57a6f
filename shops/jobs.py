"""RQ jobs of the shop connectors. Thin: they build their collaborators from the process runtime and call the
connector."""

from __future__ import annotations

import logging

from core.runtime import get_runtime
from models import utcnow
from shops import nuvemshop
from shops.base import ShopUnavailable

log = logging.getLogger(__name__)


def poll_nuvemshop_checkouts() -> dict:
    """Periodic (every 5 minutes): read Nuvemshop's abandoned checkouts into carts (Nuvemshop has no webhook for
    them). Skipped unless SHOP_PLATFORM is nuvemshop and the store id and access token are set; an API failure is
    logged and retried at the next run, having applied nothing and kept the watermark."""
    runtime = get_runtime()
    settings = runtime.settings
    if settings.shop_platform != "nuvemshop":
        return {"skipped": "SHOP_PLATFORM is not nuvemshop"}
    missing = [name for name, value in (("NUVEMSHOP_STORE_ID", settings.nuvemshop_store_id),
                                        ("NUVEMSHOP_ACCESS_TOKEN", settings.nuvemshop_access_token)) if not value]
    if missing:
        return {"skipped": f"{' and '.join(missing)} not set"}
    try:
        with runtime.db.session() as session:
            result = nuvemshop.poll_checkouts(session, runtime, utcnow())
    except ShopUnavailable as exc:
        log.warning("Nuvemshop checkouts not polled, retrying at the next run: %s", exc)
        return {"error": str(exc)}
    return result.as_json()
