"""The deployed worker with result_extended: Celery writes columns the
platform's Result table does not have."""

from audited import app

app.conf.result_extended = True
