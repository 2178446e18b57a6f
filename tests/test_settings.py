import pytest

from core.settings import Settings, SettingsError


def env(**extra):
    return {"APP_ENV": "development", **extra}


def test_defaults_match_the_contract(tmp_path):
    s = Settings.from_env(env(), instance_path=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'app.db'}"
    assert s.redis_url is None
    assert s.twilio_whatsapp_from == "whatsapp:+14155238886"
    assert s.twilio_api_url == "https://api.twilio.com"
    assert s.public_base_url == "http://127.0.0.1:5000"
    assert s.store_timezone.key == "America/Sao_Paulo"
    assert s.recovery_tick_seconds == 300
    assert s.outbox_mode is True


def test_development_secrets_are_generated_once_and_reused(tmp_path):
    first = Settings.from_env(env(), instance_path=tmp_path)
    second = Settings.from_env(env(), instance_path=tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert first.webhook_auth_token == second.webhook_auth_token
    assert first.store_webhook_secret == second.store_webhook_secret
    assert oct((tmp_path / "dev-secrets.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "name,value",
    [
        ("RECOVERY_TICK_SECONDS", "five"),
        ("RECOVERY_TICK_SECONDS", "0"),
        ("STORE_TIMEZONE", "Mars/Olympus"),
        ("PUBLIC_BASE_URL", "not a url"),
        ("TWILIO_API_URL", "ftp://x"),
        ("REDIS_URL", "memcached://x"),
        ("DATABASE_URL", "mysql://x"),
        ("APP_ENV", "staging"),
        ("TWILIO_WHATSAPP_FROM", "+14155238886"),
        ("SEND_RATE_PER_SECOND", "-3"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(**{name: value}), instance_path=tmp_path)
    assert str(info.value).startswith(name)


def test_half_twilio_credentials_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        Settings.from_env(env(TWILIO_ACCOUNT_SID="AC123"), instance_path=tmp_path)


def test_production_refuses_development_fallbacks(tmp_path):
    base = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql+psycopg://u@h/db",
        "REDIS_URL": "redis://h:6379/0",
        "SECRET_KEY": "k" * 40,
        "STORE_WEBHOOK_SECRET": "s" * 40,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
    }
    ok = Settings.from_env(base, instance_path=tmp_path)
    assert ok.is_production and not ok.outbox_mode
    assert ok.webhook_auth_token == "t" * 32
    assert not (tmp_path / "dev-secrets.json").exists()
    for missing in ("SECRET_KEY", "STORE_WEBHOOK_SECRET", "TWILIO_ACCOUNT_SID", "REDIS_URL", "DATABASE_URL"):
        broken = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(SettingsError) as info:
            Settings.from_env(broken, instance_path=tmp_path)
        assert missing in str(info.value)


def test_secrets_are_not_in_the_repr(tmp_path):
    s = Settings.from_env(env(SECRET_KEY="super-secret-value-123"), instance_path=tmp_path)
    assert "super-secret-value-123" not in repr(s)
