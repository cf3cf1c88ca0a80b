"""The browser files the web app's page loads, served by the app itself.

Solara's page loads its scripts, styles and fonts through the server's CDN proxy
(`/_solara/cdn/...`), which fetches them from a public CDN on first use. The machines famsim
runs on may have no internet beyond the package registries, so the files are taken from the
npm registry instead, as the packages Solara names, checked against the registry's sha512
integrity pinned here, and unpacked where Solara's proxy looks first
(`<venv>/share/solara/cdn/<package>@<version>/`). `make install` runs this module once;
`famsim app` refuses to start without them.

    python -m sim.app.assets            # fetch what is missing (idempotent)
    python -m sim.app.assets --check    # exit 1 and name what is missing
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Asset:
    package: str  # npm name
    version: str
    integrity: str  # the registry's dist.integrity (sha512, base64)
    served_as: str = ""  # the folder name Solara asks for, when not package@version

    @property
    def folder(self) -> str:
        return self.served_as or f"{self.package}@{self.version}"

    @property
    def tarball(self) -> str:
        leaf = self.package.rsplit("/", 1)[-1]
        return f"{REGISTRY}/{self.package}/-/{leaf}-{self.version}.tgz"


# what solara 1.64 with ipyvuetify 1 (Vue 2, which Mesa's SolaraViz is laid out for) asks for (the page, its styles and fonts, require.js,
# the draggable grid Mesa's SolaraViz lays its components in)
ASSETS: tuple[Asset, ...] = (
    Asset(
        "@widgetti/solara-vuetify-app",
        "10.1.1",
        "sha512-Cdu6G7KIBeohT2jyeQUEDr61dhEozY23St+iDwfA3+ZyPZyoIza/nS4W2g8+dbs0Xhb+WQnXlaRI92TLgeY/Jw==",
    ),
    Asset(
        "requirejs",
        "2.3.6",
        "sha512-ipEzlWQe6RK3jkzikgCupiTbTvm4S0/CAU5GlgptkN5SO6F3u0UD0K18wy6ErDqiCyP4J4YYe1HuAShvsxePLg==",
    ),
    Asset(
        "font-awesome",
        "4.5.0",
        "sha512-XGGY8CN/NT8e5fKOC/K7CESNQ3+2oYOfZqwZcKgEMtcmTiHtFIH+XZWRoU0HtcdwhtSkpWXLfTIUlTdJ4PhX8A==",
    ),
    Asset(
        "@widgetti/vue-grid-layout",
        "2.3.13-alpha.2",
        "sha512-zCPKe2r09eLUDl1NcdL66oPELDsbC07Z2xejPiQpPbE8hLITcr0DHvPEdL5UITQQilordKJwcxJXDE/QWo/KUA==",
    ),
)


# Debian's chromium, as the browser test and the app benchmark start it: headless, and with
# no background connections (this machine's network is closed; as root, no sandbox)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def cdn_dir(prefix: str | Path | None = None) -> Path:
    """Where Solara's CDN proxy looks first (solara.server.settings.assets.proxy_cache_dir)."""
    return Path(prefix if prefix is not None else sys.prefix) / "share" / "solara" / "cdn"


def missing(prefix: str | Path | None = None) -> list[Asset]:
    root = cdn_dir(prefix)
    return [a for a in ASSETS if not (root / a.folder / "package.json").exists()]


def _checked(asset: Asset, data: bytes) -> bytes:
    algorithm, _, expected = asset.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise OSError(f"{asset.tarball}: {algorithm} {digest} is not the pinned {expected}")
    return data


def fetch(asset: Asset, prefix: str | Path | None = None) -> Path:
    """Download, check and unpack one package (the tarball's `package/` folder)."""
    with urllib.request.urlopen(asset.tarball, timeout=120) as response:
        data = _checked(asset, response.read())
    target = cdn_dir(prefix) / asset.folder
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.split("/", 1)[-1] if "/" in member.name else ""
            if not name or not (member.isfile() or member.isdir()):
                continue
            member.name = name
            archive.extract(member, staging, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # whole or not at all
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    todo = missing()
    if "--check" in args:
        for asset in todo:
            print(f"famsim: missing web asset {asset.folder}", file=sys.stderr)
        return 1 if todo else 0
    for asset in todo:
        path = fetch(asset)
        print(f"famsim: web asset {asset.folder} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
