"""The deployed worker, with a mail task that retries after five minutes while
its queue hides a received message for two."""

from audited import app


@app.task(name="msg.digest", bind=True, default_retry_delay=300)
def digest(self, to):
    return to
