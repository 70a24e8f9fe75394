"""Keystone's WSGI app for gunicorn: oslo.config would otherwise parse gunicorn's argv and the workers exit."""

import sys

sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402, F401
