#!/usr/bin/env python3
"""Fails when a crate of the workspace declares a dependency its code never
names: a `[dependencies]` entry not named in src/ or build.rs (one used only
by tests or benches belongs in `[dev-dependencies]`), a `[dev-dependencies]`
entry named nowhere, a `[build-dependencies]` entry not named in build.rs.
A static check (no build), so it costs nothing in CI. Code generated from
proto/ (`tonic::include_proto!`) names prost and tonic-prost.

    scripts/unused-deps.py        # prints each unused dependency, exits 1 if any
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where each section's dependencies must be named.
PLACES = {
    "dependencies": ("src", "build.rs"),
    "dev-dependencies": ("src", "build.rs", "tests", "benches", "examples"),
    "build-dependencies": ("build.rs",),
}
GENERATED_FROM_PROTO = {"prost", "tonic-prost"}


def code(crate: Path, places: tuple[str, ...]) -> str:
    texts = []
    for place in places:
        path = crate / place
        files = [path] if path.is_file() else sorted(path.rglob("*.rs")) if path.is_dir() else []
        texts.extend(f.read_text(encoding="utf-8") for f in files)
    return "\n".join(texts)


def named(ident: str, text: str) -> bool:
    ident = re.escape(ident)
    return re.search(rf"\b{ident}::|\buse {ident}\b|\bextern crate {ident}\b|\b{ident}!|#\[{ident}\b", text) is not None


def unused() -> list[str]:
    found = []
    for manifest in sorted(ROOT.glob("services/*/Cargo.toml")):
        crate = manifest.parent
        spec = tomllib.loads(manifest.read_text(encoding="utf-8"))
        generates = "include_proto!" in code(crate, ("src",))
        for section, places in PLACES.items():
            text = code(crate, places)
            for name in spec.get(section, {}):
                if generates and name in GENERATED_FROM_PROTO:
                    continue
                if not named(name.replace("-", "_"), text):
                    found.append(f"{manifest.relative_to(ROOT)}: [{section}] {name} is never named")
    return found


if __name__ == "__main__":
    problems = unused()
    print("\n".join(problems) if problems else "no unused dependencies")
    sys.exit(1 if problems else 0)
