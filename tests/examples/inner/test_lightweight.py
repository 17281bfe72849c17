import sys

#: What an idle run (no --cadasta-* option, no ini key) may import of the
#: package: what registers the options and ini keys, and the fixtures' names.
IDLE = {"pytest_cadasta", "pytest_cadasta.plugin", "pytest_cadasta.settings",
        "pytest_cadasta.using", "pytest_cadasta.fixtures", "pytest_cadasta.basics",
        "pytest_cadasta.basics.errors", "pytest_cadasta.basics.ids"}


def test_nothing_heavy_is_imported():
    heavy = [m for m in ("celery", "kombu", "boto3", "botocore", "moto") if m in sys.modules]
    assert heavy == []


def test_only_what_registers_the_options_and_fixtures_is_imported():
    ours = {m for m in sys.modules if m.split(".")[0] in ("pytest_cadasta", "cadasta_toolbox")}
    assert ours == IDLE
