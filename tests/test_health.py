import json
from datetime import datetime, timedelta, timezone

import pytest

from core import heartbeat
from core.runtime import Runtime
from tests.conftest import make_settings
from web import health
from web.health import SCHEDULER_STALE_AFTER_SECONDS, scheduler_state, tick_stale_after_seconds

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def _beat(runtime, *, seen_ago: float | None = 0, tick_ago: float | None = 0, now: datetime | None = None):
    now = now or datetime.now(timezone.utc)
    if seen_ago is not None:
        heartbeat.record(runtime.redis, runtime.keys, "last_seen", now - timedelta(seconds=seen_ago))
    if tick_ago is not None:
        heartbeat.record(runtime.redis, runtime.keys, "last_tick", now - timedelta(seconds=tick_ago))


def test_healthz_ok(client, runtime):
    _beat(runtime)
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["db"] == "ok" and body["redis"] == "ok"
    assert body["scheduler"]["last_tick"] is not None and body["scheduler"]["last_seen"] is not None
    assert body["mode"] == "outbox"
    assert body["status"] == "ok" and body["degraded"] == []
    assert body["scheduler"]["ok"] is True
    assert body["scheduler"]["stale_after_seconds"] == SCHEDULER_STALE_AFTER_SECONDS
    assert client.get("/healthz?strict=1").status_code == 200


def test_thresholds_are_two_periods_plus_a_margin():
    assert SCHEDULER_STALE_AFTER_SECONDS == 2 * 5 + 5
    assert tick_stale_after_seconds(300) == 2 * 300 + 600  # the default tick: 20 minutes
    assert tick_stale_after_seconds(10) == 2 * 10 + 60  # the tick's time limit is at least a minute


@pytest.mark.parametrize("seen_ago, tick_ago, degraded", [
    (0, 0, []),
    (SCHEDULER_STALE_AFTER_SECONDS, tick_stale_after_seconds(300), []),  # exactly at the limit: still fresh
    (SCHEDULER_STALE_AFTER_SECONDS + 1, 0, ["scheduler"]),
    (0, tick_stale_after_seconds(300) + 1, ["recovery_tick"]),
    (3600, 7200, ["scheduler", "recovery_tick"]),
    (None, 0, ["scheduler"]),
    (0, None, ["recovery_tick"]),
    (None, None, ["scheduler", "recovery_tick"]),
])
def test_scheduler_state_thresholds(seen_ago, tick_ago, degraded):
    beat = {"last_seen": None if seen_ago is None else (NOW - timedelta(seconds=seen_ago)).isoformat(),
            "last_tick": None if tick_ago is None else (NOW - timedelta(seconds=tick_ago)).isoformat()}
    state = scheduler_state(beat, 300, NOW)
    assert state["last_seen_ok"] is ("scheduler" not in degraded)
    assert state["tick_ok"] is ("recovery_tick" not in degraded)
    assert state["ok"] is (not degraded)
    assert state["last_seen"] == beat["last_seen"] and state["last_tick"] == beat["last_tick"]
    assert state["last_seen_age_seconds"] == seen_ago


def test_an_unreadable_timestamp_counts_as_missing():
    state = scheduler_state({"last_seen": "yesterday", "last_tick": ""}, 300, NOW)
    assert state["ok"] is False and state["last_seen_age_seconds"] is None and state["last_tick_age_seconds"] is None


def test_stale_scheduler_is_degraded_but_200_unless_strict(client, runtime):
    _beat(runtime, seen_ago=SCHEDULER_STALE_AFTER_SECONDS + 60)
    res = client.get("/healthz")
    assert res.status_code == 200  # load balancers keep routing webhooks to this instance
    body = res.get_json()
    assert body["status"] == "degraded" and body["degraded"] == ["scheduler"]
    assert body["scheduler"]["ok"] is False and body["scheduler"]["tick_ok"] is True
    assert body["db"] == "ok" and body["redis"] == "ok"
    strict = client.get("/healthz?strict=1")
    assert strict.status_code == 503 and strict.get_json()["degraded"] == ["scheduler"]
    assert client.get("/healthz?strict=0").status_code == 200


def test_stale_tick_is_degraded(client, runtime):
    _beat(runtime, tick_ago=tick_stale_after_seconds(runtime.settings.recovery_tick_seconds) + 60)
    res = client.get("/healthz")
    assert res.status_code == 200
    assert res.get_json()["degraded"] == ["recovery_tick"] and res.get_json()["scheduler"]["last_seen_ok"] is True
    assert client.get("/healthz?strict=true").status_code == 503


def test_missing_heartbeat_is_degraded(client, runtime):
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "degraded" and body["degraded"] == ["scheduler", "recovery_tick"]
    assert body["scheduler"]["last_seen"] is None and body["scheduler"]["last_tick"] is None
    assert client.get("/healthz?strict=1").status_code == 503


def test_heartbeat_ages_use_the_clock_of_the_request(client, runtime, monkeypatch):
    _beat(runtime, now=NOW)
    monkeypatch.setattr(health, "_now", lambda: NOW + timedelta(seconds=SCHEDULER_STALE_AFTER_SECONDS))
    assert client.get("/healthz").get_json()["status"] == "ok"
    monkeypatch.setattr(health, "_now", lambda: NOW + timedelta(seconds=SCHEDULER_STALE_AFTER_SECONDS + 1))
    assert client.get("/healthz").get_json()["degraded"] == ["scheduler"]


def test_heartbeat_record_says_when_the_field_was_new(runtime):
    assert heartbeat.record(runtime.redis, runtime.keys, "last_seen") is True
    assert heartbeat.record(runtime.redis, runtime.keys, "last_seen") is False
    runtime.redis.delete(runtime.keys("scheduler", "heartbeat"))  # Redis restarted empty, or flushed
    assert heartbeat.record(runtime.redis, runtime.keys, "last_seen") is True
    with pytest.raises(ValueError):
        heartbeat.record(runtime.redis, runtime.keys, "last_dance")


def test_healthz_503_when_redis_is_down(instance_dir, database_url, db):
    from app import create_app

    settings = make_settings(instance_dir, database_url, "redis://127.0.0.1:1/0")
    app = create_app({"RUNTIME": Runtime(settings, database=db), "TESTING": True})
    res = app.test_client().get("/healthz")
    assert res.status_code == 503
    body = res.get_json()
    assert body["redis"] == "down" and body["db"] == "ok"
    assert body["status"] == "degraded" and "redis" in body["degraded"]
    assert body["scheduler"]["last_tick"] is None and body["scheduler"]["ok"] is False
    assert body["whatsapp"] == {"provider": "twilio", "mode": "outbox", "last_send": None, "last_inbound": None,
                                "last_status": None}


def test_healthz_503_when_database_is_down(instance_dir, redis_url, tmp_path):
    from app import create_app

    missing_dir = tmp_path / "no" / "such" / "dir"
    settings = make_settings(instance_dir, f"sqlite:///{missing_dir}/x.db", redis_url)
    runtime = Runtime(settings)
    heartbeat.record(runtime.redis, runtime.keys, "last_seen")
    heartbeat.record(runtime.redis, runtime.keys, "last_tick")
    try:
        app = create_app({"RUNTIME": runtime, "TESTING": True})
        res = app.test_client().get("/healthz")
        assert res.status_code == 503
        body = res.get_json()
        assert body["db"] == "down" and body["redis"] == "ok"
        assert body["status"] == "degraded" and body["degraded"] == ["db"]
        assert body["scheduler"]["ok"] is True  # only the database is wrong
    finally:
        runtime.redis.delete(runtime.keys("scheduler", "heartbeat"))


def test_unknown_api_path_is_json_404(client):
    res = client.get("/api/nothing-here")
    assert res.status_code == 404 and res.is_json


# --- the WhatsApp channel's last activity -----------------------------------------------------------------


def test_healthz_reports_the_channel_with_nulls_before_any_activity(client, runtime):
    body = client.get("/healthz").get_json()
    assert body["whatsapp"] == {"provider": "twilio", "mode": "outbox", "last_send": None, "last_inbound": None,
                                "last_status": None}
    assert body["mode"] == "outbox"  # the key kept from before


def test_healthz_reports_the_last_send_inbound_and_status_from_redis(client, runtime):
    sent, inbound = NOW - timedelta(minutes=2), NOW - timedelta(minutes=5)
    brt = timezone(timedelta(hours=-3))
    runtime.redis.set(runtime.keys("last-send"), sent.isoformat())
    runtime.redis.set(runtime.keys("last-inbound"), inbound.astimezone(brt).isoformat())  # any offset: told in UTC
    runtime.redis.set(runtime.keys("last-status"), "not a time")
    whatsapp = client.get("/healthz").get_json()["whatsapp"]
    assert whatsapp["last_send"] == sent.isoformat() and whatsapp["last_inbound"] == inbound.isoformat()
    assert whatsapp["last_status"] is None  # unreadable counts as missing
    assert client.get("/healthz").get_json()["status"] == "degraded"  # no heartbeat here; the channel degrades nothing


def test_a_real_send_moves_last_send(client, runtime, session):
    from datetime import datetime as dt

    from channel.sender import queue_message
    from tests.channel_helpers import make_customer, run_jobs

    customer = make_customer(session)
    queue_message(session, runtime, customer, kind="bot", body="Oi", automated=False, now=dt.now(timezone.utc))
    session.commit()
    run_jobs(runtime)
    last_send = client.get("/healthz").get_json()["whatsapp"]["last_send"]
    assert last_send is not None and (dt.now(timezone.utc) - dt.fromisoformat(last_send)).total_seconds() < 60


@pytest.mark.parametrize("env, provider, mode, legacy", [
    ({}, "twilio", "outbox", "outbox"),
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x" * 32}, "twilio", "live", "twilio"),
    ({"WHATSAPP_PROVIDER": "meta"}, "meta", "outbox", "outbox"),
    ({"WHATSAPP_PROVIDER": "meta", "META_ACCESS_TOKEN": "token-" * 6, "META_PHONE_NUMBER_ID": "123",
      "META_WABA_ID": "456", "META_APP_SECRET": "app-secret-" * 3, "META_VERIFY_TOKEN": "verify-" * 4}, "meta", "live", "meta"),
])
def test_healthz_names_the_provider_and_whether_it_sends_for_real(instance_dir, database_url, redis_url, db,
                                                                   redis_client, env, provider, mode, legacy):
    from app import create_app

    from tests.conftest import delete_prefixed

    settings = make_settings(instance_dir, database_url, redis_url, **env)
    try:
        app = create_app({"RUNTIME": Runtime(settings, database=db, redis_client=redis_client), "TESTING": True})
        body = app.test_client().get("/healthz").get_json()
        assert body["whatsapp"]["provider"] == provider and body["whatsapp"]["mode"] == mode
        assert body["mode"] == legacy
        for secret in settings.secret_values():
            assert secret not in json.dumps(body)
    finally:
        delete_prefixed(redis_client, settings.redis_key_prefix)
