import sys


def test_nothing_heavy_is_imported():
    heavy = [m for m in ("celery", "kombu", "boto3", "botocore", "moto") if m in sys.modules]
    assert heavy == []
