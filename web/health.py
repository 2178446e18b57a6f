"""GET /healthz: is the database reachable, is Redis reachable, is the scheduler ticking."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from core import heartbeat
from web import runtime

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    rt = runtime()
    body: dict[str, object] = {}
    healthy = True
    try:
        with rt.db.session() as session:
            session.execute(text("SELECT 1"))
        body["db"] = "ok"
    except Exception as exc:  # any driver error means "down"; the detail goes to the log, not the client
        log.warning("healthz: database unreachable: %s", type(exc).__name__)
        body["db"] = "down"
        healthy = False
    try:
        rt.redis.ping()
        body["redis"] = "ok"
        body["scheduler"] = heartbeat.read(rt.redis, rt.keys)
    except Exception as exc:
        log.warning("healthz: redis unreachable: %s", type(exc).__name__)
        body["redis"] = "down"
        body["scheduler"] = {"last_tick": None, "last_seen": None}
        healthy = False
    body["mode"] = "outbox" if rt.settings.outbox_mode else "twilio"
    return jsonify(body), (200 if healthy else 503)
