"""scripts/demo's JupyterLab: no "official Jupyter news?" toast and no update check.

JupyterLab asks about news when its notification setting `fetchNews` is "none" (the
default). scripts/demo puts scripts/demo-config on JUPYTER_CONFIG_PATH, whose
labconfig/default_setting_overrides.json sets it to "false"; this starts JupyterLab the
same way (fresh, empty user settings) and reads the setting through JupyterLab's API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..notebooks.nbenv import ROOT
from .conftest import Lab, _free_port, _stop, _wait_until_up

DEMO = ROOT / "scripts" / "demo"
DEMO_CONFIG = ROOT / "scripts" / "demo-config"
PLUGIN = "@jupyterlab/apputils-extension:notification"


def start_lab(base: Path, config_path: str | None) -> Lab:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for d in ("config", "data", "runtime", "settings", "root"):
        (base / d).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
    )
    if config_path is not None:
        env["JUPYTER_CONFIG_PATH"] = config_path
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={base / 'root'}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, base / "root", log, process)
    try:
        _wait_until_up(lab)
    except BaseException:
        _stop(process)
        raise
    return lab


def notification_defaults(lab: Lab) -> dict[str, object]:
    """The plugin's settings as JupyterLab's frontend starts from: the schema's defaults
    (with the overrides applied by the server); the user's own settings are empty here."""
    url = f"{lab.url}/lab/api/settings/{PLUGIN}?token={lab.token}"
    with urllib.request.urlopen(url, timeout=10) as r:
        plugin = json.loads(r.read())
    assert plugin["settings"] == {}
    return {k: v.get("default") for k, v in plugin["schema"]["properties"].items()}


@pytest.fixture
def labs(tmp_path: Path) -> Iterator[dict[str, Lab]]:
    pytest.importorskip("jupyterlab")
    started: dict[str, Lab] = {}
    try:
        started["demo"] = start_lab(tmp_path / "demo", str(DEMO_CONFIG))
        started["plain"] = start_lab(tmp_path / "plain", None)
        yield started
    finally:
        for lab in started.values():
            _stop(lab.process)


def test_demo_turns_off_the_news_toast_and_update_check(labs: dict[str, Lab]) -> None:
    assert 'JUPYTER_CONFIG_PATH="$ROOT/scripts/demo-config' in DEMO.read_text()
    demo = notification_defaults(labs["demo"])
    assert demo["fetchNews"] == "false" and demo["checkForUpdates"] is False
    plain = notification_defaults(labs["plain"])
    assert plain["fetchNews"] == "none"  # JupyterLab's default: it would ask
