"""Recording a release: `schema_files release` and `releases.record`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpdesk_contracts.releases import ReleaseError, load, record, released_versions
from helpdesk_contracts.schema_files import main, rendered_schemas

pytestmark = pytest.mark.unit

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
OPENED = "ticketing.tickets.v2/TicketOpened.v1.schema.json"


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    """A copy of the contracts directory's generated files, at version 9.0.0, released once."""
    shutil.copytree(CONTRACTS_DIR / "schemas", tmp_path / "schemas")
    set_version(tmp_path, "9.0.0")
    assert record(tmp_path, "9.0.0", rendered_schemas())
    return tmp_path


def set_version(contracts_dir: Path, version: str) -> None:
    text = f'[project]\nname = "helpdesk-contracts"\nversion = "{version}"\n'
    (contracts_dir / "pyproject.toml").write_text(text, encoding="utf-8")


def with_subject_limit(limit: int) -> dict[str, str]:
    files = rendered_schemas()
    schema = json.loads(files[OPENED])
    schema["properties"]["payload"]["properties"]["subject"]["anyOf"][0]["maxLength"] = limit
    return files | {OPENED: json.dumps(schema)}


def test_release_records_the_schemas_as_the_version_in_pyproject(
    contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_version(contracts, "9.1.0")
    assert main(["release", str(contracts)]) == 0
    assert capsys.readouterr().out == "recorded: releases/9.1.0/\n"
    assert released_versions(contracts) == ["9.0.0", "9.1.0"]
    assert load(contracts / "releases/9.1.0") == load(contracts / "schemas")


def test_releasing_the_same_version_again_changes_nothing(
    contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["release", str(contracts)]) == 0
    assert capsys.readouterr().out == "unchanged: releases/9.0.0/ is recorded already\n"


def test_a_released_version_cannot_be_recorded_with_other_schemas(contracts: Path) -> None:
    with pytest.raises(ReleaseError, match=r"9\.0\.0 is released already, with other schemas"):
        record(contracts, "9.0.0", with_subject_limit(500))


def test_a_release_must_not_be_older_than_the_last(contracts: Path) -> None:
    with pytest.raises(ReleaseError, match=r"8\.9\.9 is older than the last release, 9\.0\.0"):
        record(contracts, "8.9.9", rendered_schemas())


def test_a_release_that_breaks_readers_of_the_last_is_refused(contracts: Path) -> None:
    with pytest.raises(ReleaseError) as refused:
        record(contracts, "9.1.0", with_subject_limit(100))
    assert str(refused.value) == (
        "not backward compatible with release 9.0.0:\n"
        "  ticketing.tickets.v2: TicketOpened v1: payload.subject: "
        "maxLength lowered from 250 to 100"
    )
    assert released_versions(contracts) == ["9.0.0"]


def test_allow_breaking_records_it_and_the_next_release_compares_with_it(
    contracts: Path,
) -> None:
    assert record(contracts, "10.0.0", with_subject_limit(100), allow_breaking=True)
    with pytest.raises(ReleaseError, match="maxLength lowered from 100 to 50"):
        record(contracts, "10.1.0", with_subject_limit(50))
    assert record(contracts, "10.1.0", with_subject_limit(200))


def test_release_refuses_stale_schema_files(
    contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (contracts / "schemas/topics.json").write_text("{}", encoding="utf-8")
    set_version(contracts, "9.1.0")
    assert main(["release", str(contracts)]) == 1
    assert "the schema files are out of date; run:" in capsys.readouterr().err
    assert released_versions(contracts) == ["9.0.0"]


def test_a_snapshot_missing_a_listed_schema_is_refused(contracts: Path) -> None:
    files = rendered_schemas()
    del files[OPENED]
    with pytest.raises(ReleaseError, match=f"topics.json lists schemas that are missing: {OPENED}"):
        record(contracts, "9.1.0", files)


def test_only_versions_belong_in_the_releases_directory(contracts: Path) -> None:
    (contracts / "releases/latest").mkdir()
    with pytest.raises(ReleaseError, match="not a release version"):
        released_versions(contracts)
