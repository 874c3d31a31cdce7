"""Release snapshots: the schema files of every released version, committed next to schemas/.

`releases/<X.Y.Z>/` holds, byte for byte, what `schemas/` held when version X.Y.Z was
released: topics.json and one file per event type and version. `record` writes it (through
`python -m helpdesk_contracts.schema_files release contracts`, for the version in
pyproject.toml) once the schemas are backward compatible with the last release, and the unit
tests compare the current schemas against the last release the same way.

Why committed snapshots, and not git tags or a package index:
- CI runs on a fresh, possibly shallow clone without tags, where `git show
  contracts-v1.1.0:contracts/schemas/...` finds nothing; fetching history from a test would be
  slow and would need the network.
- What publishers build against is the schema files, not the model code: regenerating an old
  release's schemas would need that release's code and pydantic version.
- Git stores identical files once, so a release costs only the files it changed, and it shows
  up in review as a new directory beside the version bump.

"The last release" is the highest version under releases/. Each release is compared with the
one before, so every release reads all that came before it, unless one was recorded with
`allow_breaking` (a new major version, or a change the check cannot prove compatible).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpdesk_contracts.compatibility import TOPICS_FILE, Schemas, breaking_changes

RELEASES_DIR = "releases"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class ReleaseError(Exception):
    """A release cannot be recorded, or the recorded releases are not in order."""


def contracts_version(contracts_dir: Path) -> str:
    """The version in the contracts' pyproject.toml."""
    with (contracts_dir / "pyproject.toml").open("rb") as file:
        version = str(tomllib.load(file)["project"]["version"])
    _version_key(version)
    return version


def released_versions(contracts_dir: Path) -> list[str]:
    """The recorded releases, oldest first."""
    root = contracts_dir / RELEASES_DIR
    names = [path.name for path in root.iterdir()] if root.is_dir() else []
    return sorted(names, key=_version_key)


def last_release(contracts_dir: Path) -> tuple[str, Schemas] | None:
    """The highest recorded version and its schemas, or None before the first release."""
    versions = released_versions(contracts_dir)
    if not versions:
        return None
    return versions[-1], load(contracts_dir / RELEASES_DIR / versions[-1])


def load(directory: Path) -> Schemas:
    """The schema files of a release (or of schemas/), parsed, by path in the directory."""
    return parse(_read(directory))


def parse(files: Mapping[str, str]) -> Schemas:
    """Schema files by path -> parsed documents; every schema topics.json lists must be there."""
    schemas: dict[str, Any] = {path: json.loads(text) for path, text in files.items()}
    listed = {e["schema"] for t in schemas[TOPICS_FILE].values() for e in t["events"]}
    if missing := sorted(listed - schemas.keys()):
        raise ReleaseError(f"{TOPICS_FILE} lists schemas that are missing: {', '.join(missing)}")
    return schemas


def record(
    contracts_dir: Path, version: str, files: Mapping[str, str], *, allow_breaking: bool = False
) -> bool:
    """Write `files` as release `version`; False if it is recorded already, identical."""
    target = contracts_dir / RELEASES_DIR / version
    if target.exists():
        if _read(target) == dict(files):
            return False
        raise ReleaseError(
            f"{version} is released already, with other schemas: bump the version in "
            "pyproject.toml (and add a CHANGELOG.md entry)"
        )
    versions = released_versions(contracts_dir)
    if versions and _version_key(version) < _version_key(versions[-1]):
        raise ReleaseError(f"{version} is older than the last release, {versions[-1]}")
    if versions and not allow_breaking:
        released = load(contracts_dir / RELEASES_DIR / versions[-1])
        if changes := breaking_changes(released, parse(files)):
            raise ReleaseError(
                f"not backward compatible with release {versions[-1]}:\n"
                + "\n".join(f"  {change}" for change in changes)
            )
    parse(files)
    for path, text in files.items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text, encoding="utf-8")
    return True


def _read(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _version_key(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if match is None:
        raise ReleaseError(f"not a release version (X.Y.Z): {version!r}")
    major, minor, patch = map(int, match.groups())
    return major, minor, patch
