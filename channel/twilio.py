"""Twilio's Messages API through the official SDK, against ``TWILIO_API_URL``."""

from __future__ import annotations

import json

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channel.transport import OPTED_OUT, OUTSIDE_WINDOW, UNDELIVERABLE, Outbound, ProviderError, ProviderReceipt, \
    unreachable_or_unknown
from core.settings import Settings

# Twilio error codes and what they mean here. 63016: free-form outside the 24 h window; 21610: the recipient
# replied STOP; 63024: invalid recipient; 63003: not a WhatsApp number.
MEANINGS = {"63016": OUTSIDE_WINDOW, "21610": OPTED_OUT, "63024": UNDELIVERABLE, "63003": UNDELIVERABLE}


class TwilioTransport:
    name = "twilio"

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                              http_client=TwilioHttpClient(timeout=timeout))
        self._client.api.base_url = settings.twilio_api_url
        self._from = settings.twilio_whatsapp_from
        self._callback = f"{settings.public_base_url}/webhooks/whatsapp/status"

    def send(self, message: Outbound) -> ProviderReceipt:
        kwargs: dict = {"to": f"whatsapp:{message.phone}", "from_": self._from, "status_callback": self._callback}
        if message.template is not None:
            # Never Body together with ContentSid: outside the window only the template is delivered.
            kwargs["content_sid"] = message.template.external_id
            kwargs["content_variables"] = json.dumps(message.template.values, ensure_ascii=False)
        else:
            kwargs["body"] = message.body
        try:
            created = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code else None
            raise ProviderError(str(exc.msg), status=exc.status, code=code,
                                retryable=exc.status == 429 or exc.status >= 500,
                                meaning=MEANINGS.get(code or "")) from None
        except requests.RequestException as exc:
            raise unreachable_or_unknown(exc) from None
        return ProviderReceipt(sid=created.sid, status=created.status or "queued")
