"""gunicorn settings shared by the web (Dash/Flask) and model (FastAPI) processes of the Procfile.

Database engines must not cross a fork: a pooled connection opened in the master would be shared by every worker
and corrupt the protocol stream. Each worker therefore disposes inherited engines right after the fork and opens
its own connections lazily.
"""

from __future__ import annotations

import os

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8050')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Access logs carry paths such as /patient/<pseudonymous id>; keep them off by default (no patient details in logs).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
preload_app = False


def post_fork(server, worker) -> None:  # noqa: ANN001 - gunicorn hook signature
    from data_access.db import dispose_all_engines

    dispose_all_engines()
