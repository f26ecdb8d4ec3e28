"""A bounded fuzz of the spec readers (fixed seed, a few thousand inputs, seconds): any input
either gives a spec or an envd error a user can act on — never another exception."""

from __future__ import annotations

import random
from pathlib import Path

from envd.errors import EnvdError
from envd.spec_input import load_spec

ROOT = Path(__file__).resolve().parents[3]
SEEDS = (
    sorted((ROOT / "tests" / "fixtures" / "specs").rglob("*.y*ml"))[:12]
    + sorted((ROOT / "tests" / "fixtures" / "specs").rglob("requirements*.txt"))[:6]
)
TOKENS = ["\x00", "\ufeff", ":", "- ", "::", "[", "]", "{", "}", "@", "#", "\\", "\n  ", "\t",
          "*", ">=", ";", "-r ", "-c ", "--index-url ", "file:///", "~x/", "${X}", "'", '"',
          "&a", "*a", "!!python/object", "\r", "é", "=" * 3]  # fmt: skip


def mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(chars) + 1)
        roll = rng.random()
        if roll < 0.4:
            chars[at:at] = list(rng.choice(TOKENS))
        elif roll < 0.7 and chars:
            del chars[at : at + rng.randint(1, 20)]
        elif chars:
            chars[at : at + 1] = [chr(rng.randrange(32, 0x2FF))]
    return "".join(chars)


def test_spec_readers_never_raise_anything_but_envd_errors(tmp_path: Path) -> None:
    assert SEEDS, "no seed files"
    rng = random.Random(20261205)
    unexpected: list[str] = []
    for index in range(2500):
        seed = SEEDS[index % len(SEEDS)]
        body = mutate(rng, seed.read_text(errors="replace"))
        target = tmp_path / (
            f"f{index}.yml" if seed.suffix in (".yml", ".yaml") else f"r{index}.txt"
        )
        target.write_text(body, errors="surrogatepass")
        try:
            if target.suffix == ".yml":
                load_spec(env_files=[target])
            else:
                load_spec(requirement_files=[target], python="3.11")
        except EnvdError:
            pass
        except Exception as err:  # what this test is for: anything else is a bug
            unexpected.append(f"{seed.name} #{index}: {type(err).__name__}: {err}"[:300])
        target.unlink()
    assert unexpected == [], unexpected[:5]
