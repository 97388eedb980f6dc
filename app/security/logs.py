"""Keep patient identifiers out of logs: access-log lines name the page, not the patient.

The pseudonymous patient id in ``/patient/<id>`` paths (and ``patient_id=`` query parameters) is replaced by
``[redacted]`` in every record that passes the filter. The audit table, not the log, is where patient access is
recorded.
"""

from __future__ import annotations

import logging
import re

_PATIENT_PATH = re.compile(r"(/patient/)[^/?#\s\"']+")
_PATIENT_PARAM = re.compile(r"(patient_id=)[^&\s\"']+")
REDACTED = "[redacted]"
LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "dash", "app", "flask.app")


def redact(text: str) -> str:
    return _PATIENT_PARAM.sub(rf"\g<1>{REDACTED}", _PATIENT_PATH.sub(rf"\g<1>{REDACTED}", text))


class PatientRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_log_redaction() -> None:
    """Attach the filter once to the loggers and handlers that see request paths."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, PatientRedactingFilter) for f in logger.filters):
            logger.addFilter(PatientRedactingFilter())
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, PatientRedactingFilter) for f in handler.filters):
            handler.addFilter(PatientRedactingFilter())
