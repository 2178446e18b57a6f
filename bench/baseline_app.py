"""The webhook benchmark's yardstick: a bare Flask endpoint that only checks Twilio's signature and answers an
empty TwiML response. Served by gunicorn exactly like the real app (`bench.baseline_app:create_baseline()`)."""

from __future__ import annotations

import os

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse


def create_baseline() -> Flask:
    app = Flask(__name__)
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    public_url = os.environ["PUBLIC_BASE_URL"].rstrip("/")

    @app.post("/webhooks/whatsapp")
    def inbound():
        if not validator.validate(public_url + request.path, request.form.to_dict(),
                                  request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        return Response(str(MessagingResponse()), mimetype="text/xml")  # the same empty TwiML as the app

    return app
