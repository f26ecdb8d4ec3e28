"""Whether a wheel installs on a PyPI target, by the tags its filename carries (PEP 427): one
check for a lock's wheels, a wheel given as a file, a wheel built here and a build record."""

from __future__ import annotations

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from envd.errors import WheelBuildError
from envd.platforms import NOARCH

from .pypi_target import PypiTarget


def wheel_rank(filename: str, target: PypiTarget) -> int | None:
    """How well the wheel fits the target (lower is better); None when the name is not a
    wheel's or the wheel does not install there."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return target.rank(tags)


def wheel_misfit(filename: str, target: PypiTarget) -> str | None:
    """Why a wheel does not install on the target, naming both tags; None when it does.
    `InvalidWheelFilename` for a name that is not a wheel's."""
    _, _, _, tags = parse_wheel_filename(filename)
    if target.rank(tags) is not None:
        return None
    tagged = ".".join(sorted(str(t) for t in tags))
    return (f"the wheel is tagged `{tagged}`, which does not install on the target "
            f"(`{target.tags[0]}`)")  # fmt: skip


def check_wheel_tags(filename: str, target: PypiTarget, what: str) -> None:
    """Refuse a built wheel that does not install on the target, naming both tags: a C
    extension built on the wrong machine is never labelled for the target."""
    misfit = wheel_misfit(filename, target)
    if misfit is not None:
        raise WheelBuildError(
            f"failed to build {what} for `{target.platform}`: {misfit}",
            hint=f"only an agent running on `{target.platform}` can build it: start one there "
            "(`--native-platform` is for tests and emulation, it changes no compiler)",
        )


def wheel_subdir(filename: str, target: PypiTarget) -> str:
    """`noarch` for a pure wheel (every tag's platform `any`), else the target's platform."""
    _, _, _, tags = parse_wheel_filename(filename)
    return NOARCH if all(t.platform == "any" for t in tags) else target.platform
