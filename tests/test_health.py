from core import heartbeat
from core.runtime import Runtime
from tests.conftest import make_settings


def test_healthz_ok(client, runtime):
    heartbeat.record(runtime.redis, runtime.keys, "last_tick")
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["db"] == "ok" and body["redis"] == "ok"
    assert body["scheduler"]["last_tick"] is not None
    assert body["mode"] == "outbox"


def test_healthz_503_when_redis_is_down(instance_dir, database_url, db):
    from app import create_app

    settings = make_settings(instance_dir, database_url, "redis://127.0.0.1:1/0")
    app = create_app({"RUNTIME": Runtime(settings, database=db), "TESTING": True})
    res = app.test_client().get("/healthz")
    assert res.status_code == 503
    assert res.get_json()["redis"] == "down" and res.get_json()["db"] == "ok"


def test_healthz_503_when_database_is_down(instance_dir, redis_url, tmp_path):
    from app import create_app

    missing_dir = tmp_path / "no" / "such" / "dir"
    settings = make_settings(instance_dir, f"sqlite:///{missing_dir}/x.db", redis_url)
    app = create_app({"RUNTIME": Runtime(settings), "TESTING": True})
    res = app.test_client().get("/healthz")
    assert res.status_code == 503
    assert res.get_json()["db"] == "down" and res.get_json()["redis"] == "ok"


def test_unknown_api_path_is_json_404(client):
    res = client.get("/api/nothing-here")
    assert res.status_code == 404 and res.is_json
