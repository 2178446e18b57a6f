"""gunicorn settings, read from the working directory by `gunicorn 'app:create_app()'` (and bench/webhook.py).

Workers and the bind address are left to the command line (`-w 4 -b 0.0.0.0:5000`); options given there
override these.
"""

# Access and error lines go through core.logging.RedactingFormatter: phone numbers masked (also URL-encoded in
# the request line's path and query string), secrets scrubbed, one line per event.
logger_class = "core.logging.MaskingGunicornLogger"

# The access log is on, on stderr with gunicorn's error log and the app's log (MaskingGunicornLogger sends "-"
# there), in gunicorn's default format.
accesslog = "-"
