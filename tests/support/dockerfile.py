"""Reads deploy/docker/Dockerfile into stages, so that the tests check and run what the
images would (their ENV, USER and CMD) without a Docker engine, which no machine of ours
has. Only the syntax that file uses: instructions, continuation lines, comments, and the
exec form of CMD."""

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from support.servers import REPO

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
SERVICES = ("ticketing", "sla", "notifications", "feedback")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV...
    arguments: str


@dataclass
class Stage:
    name: str
    base: str  # the FROM argument: an image or an earlier stage
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The file's instructions, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def stages(path: Path = DOCKERFILE) -> dict[str, Stage]:
    """Every stage by its name (AS ...), in order."""
    result: dict[str, Stage] = {}
    current: Stage | None = None
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(result))
            current = result[name] = Stage(name, words[0])
        elif current is not None:
            current.instructions.append(instruction)
    return result


def chain(name: str, path: Path = DOCKERFILE) -> list[Stage]:
    """The stage and the stages it is built FROM, the first base first."""
    by_name = stages(path)
    found = [by_name[name]]
    while found[0].base in by_name:
        found.insert(0, by_name[found[0].base])
    return found


def environment(name: str, path: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV a container of target `name` starts with (ENV key=value forms only)."""
    env: dict[str, str] = {}
    for stage in chain(name, path):
        for arguments in stage.all("ENV"):
            for word in shlex.split(arguments):
                key, sep, value = word.partition("=")
                assert sep, f"ENV {arguments!r}: use the key=value form"
                env[key] = value
    return env


def user(name: str, path: Path = DOCKERFILE) -> str:
    """The last USER of target `name` ("" when none)."""
    users = [u for stage in chain(name, path) for u in stage.all("USER")]
    return users[-1] if users else ""


def command(name: str, path: Path = DOCKERFILE) -> list[str]:
    """The CMD of target `name`, in exec (JSON) form."""
    commands = [c for stage in chain(name, path) for c in stage.all("CMD")]
    assert commands, f"target {name} has no CMD"
    value = json.loads(commands[-1])
    assert isinstance(value, list), value
    assert all(isinstance(v, str) for v in value), value
    return value
