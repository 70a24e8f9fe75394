"""Glance's WSGI app for gunicorn, with the thread pool module loaded up front.

Glance's exit hook (``drain_workers``) makes its task pool, and so first imports
``concurrent.futures.thread``, while the interpreter shuts down: too late to register that module's
own exit hook, so every worker would end on a traceback. Importing it here first avoids that.
"""

import concurrent.futures.thread  # noqa: F401

from glance.wsgi.api import application  # noqa: F401
