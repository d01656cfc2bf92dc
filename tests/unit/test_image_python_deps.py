"""Every runtime dependency of the agent reaches the live image: the image takes them from
Debian (image/packages.list), except the wheels build_image.sh installs itself."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Debian names that are not python3-<PyPI name>.
DEBIAN_NAME = {"py-cpuinfo": "python3-cpuinfo", "pyyaml": "python3-yaml"}
WHEELS = {"fpdf2"}  # not packaged in bookworm; build_image.sh downloads the wheel


def test_every_agent_dependency_is_installed_in_the_image():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() for d in deps]
    packages = {line.split()[0] for line in (ROOT / "image/packages.list").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")}
    build = (ROOT / "build_image.sh").read_text()
    assert "pypdf" in names  # `ardoise verify cert.pdf` on the stick
    for name in names:
        if name in WHEELS:
            assert f"{name}==$" in build, name
        else:
            assert DEBIAN_NAME.get(name, f"python3-{name}") in packages, name
