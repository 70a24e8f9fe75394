"""gunicorn settings for the Keystone peer: the master stops when its standard input (a pipe from the tests) closes.

So a test process that dies without stopping Keystone (SIGKILL, a crash) leaves no server behind.
"""

import os
import signal
import threading
from typing import Any

# Several gunicorns on one machine must not share ~/.gunicorn/gunicorn.ctl.
control_socket_disable = True


def when_ready(server: Any) -> None:
    def watch_parent() -> None:
        while os.read(0, 4096):
            pass
        os.kill(server.pid, signal.SIGTERM)

    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
