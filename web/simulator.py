"""/simulator: chat as a shopper through the real, signed webhook path (development and outbox mode only)."""

from flask import Blueprint

bp = Blueprint("simulator", __name__)
