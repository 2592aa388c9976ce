"""A local InfluxDB OSS 2.x server, built once from its Go module and cached."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import structlog

from streams.localstack.process import ManagedProcess, port_is_open, wait_until
from streams.settings import Settings

__all__ = ["InfluxHealth", "LocalInfluxDB", "influx_health"]

log = structlog.get_logger(__name__)

_MODULE = "github.com/influxdata/influxdb/v2"
_PKG_CONFIG = "github.com/influxdata/pkg-config@v0.2.7"

# flux's crates say deny(warnings); today's rustc has lints they never heard of. RUSTFLAGS
# does not reach build-script dependencies when cargo runs with --target (it does here), so
# the cap goes in through a rustc wrapper instead.
_RUSTC_WRAPPER = """#!/bin/sh
rustc="$1"; shift
case " $* " in
  *" --cap-lints"*) exec "$rustc" "$@" ;;
  *) exec "$rustc" "$@" --cap-lints warn ;;
esac
"""


@dataclass(frozen=True)
class InfluxHealth:
    healthy: bool
    detail: str
    version: str | None = None


def influx_health(url: str) -> InfluxHealth:
    """``GET /health``: InfluxDB's own readiness answer, with its version."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=3) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        return InfluxHealth(False, f"no /health answer from {url}: {exc}")
    ok = body.get("status") == "pass"
    return InfluxHealth(ok, body.get("message", ""), body.get("version"))


class LocalInfluxDB:
    """Build (once), start, onboard, check and stop the local ``influxd``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ver = settings.influx.version
        self.binary = settings.cache_dir / "bin" / f"influxd-{ver}"
        self.build_dir = settings.cache_dir / "build" / f"influxd-{ver}"
        self.state = settings.state_dir / "influxdb"
        self.process = ManagedProcess(
            "influxdb", self.state / "influxd.pid", self.state / "influxd.log"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.influx.port}"

    # -- build -----------------------------------------------------------------------------
    def installed(self) -> bool:
        return self.binary.is_file() and os.access(self.binary, os.X_OK)

    def install(self) -> None:
        """``go build`` influxd through a wrapper module; flux's Rust part via pkg-config."""
        if self.installed():
            return
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("Go is needed once to build influxd; install it")
        ver = self.settings.influx.version
        bin_dir = self.binary.parent
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        build_log = self.build_dir / "build.log"
        env = {
            **os.environ,
            "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
            "GOFLAGS": "-mod=mod",
            "RUSTUP_TOOLCHAIN": "stable",
            "RUSTFLAGS": "--cap-lints=warn",
        }
        wrapper = bin_dir / "rustc-cap-lints"
        wrapper.write_text(_RUSTC_WRAPPER)
        wrapper.chmod(0o755)
        env["RUSTC_WRAPPER"] = str(wrapper)
        env["PKG_CONFIG"] = str(bin_dir / "pkg-config")

        def run(*argv: str) -> str:
            with open(build_log, "a") as out:
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                proc = subprocess.run(
                    argv,
                    cwd=self.build_dir,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=out,
                    text=True,
                    check=False,
                )
                out.write(proc.stdout)
            if proc.returncode != 0:
                tail = "\n".join(build_log.read_text(errors="replace").splitlines()[-40:])
                raise RuntimeError(f"building influxd failed at `{' '.join(argv)}`:\n{tail}")
            return proc.stdout

        log.info("influxd_build", version=ver, log=str(build_log))
        gobin_env = {**env, "GOBIN": str(bin_dir)}
        proc = subprocess.run(
            [go, "install", _PKG_CONFIG], env=gobin_env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"installing the pkg-config wrapper failed:\n{proc.stderr[-3000:]}")
        # influxdb's go.mod has replace lines, which `go install pkg@ver` refuses: a wrapper
        # module requires it and carries the same replaces.
        info = json.loads(run(go, "mod", "download", "-json", f"{_MODULE}@{ver}"))
        replaces = _replace_lines(Path(info["GoMod"]).read_text())
        (self.build_dir / "go.mod").write_text(
            "module anomstream.local/influxd-build\n\ngo 1.24.0\n\n"
            f"require {_MODULE} {ver}\n\n" + "\n".join(replaces) + "\n"
        )
        (self.build_dir / "tools.go").write_text(
            f'//go:build tools\n\npackage tools\n\nimport _ "{_MODULE}/cmd/influxd"\n'
        )
        run(go, "mod", "tidy")
        tmp = self.binary.with_name(self.binary.name + ".tmp")
        run(
            go,
            "build",
            "-o",
            str(tmp),
            "-ldflags",
            f"-X main.version={ver} -X main.commit=anomstream-local",
            f"{_MODULE}/cmd/influxd",
        )
        tmp.rename(self.binary)

    # -- run -------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> bool:
        """Start (and onboard on first start). True if started now, False if already up."""
        if self.process.is_running():
            return False
        port = self.settings.influx.port
        if port_is_open("127.0.0.1", port):
            raise RuntimeError(
                f"port {port} is taken by a process this stack does not own; "
                "set ANOMSTREAM_INFLUX__PORT or stop it"
            )
        self.install()
        data = self.state / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.process.start(
            [
                str(self.binary),
                "run",
                f"--bolt-path={data / 'influxd.bolt'}",
                f"--engine-path={data / 'engine'}",
                f"--sqlite-path={data / 'influxd.sqlite'}",
                f"--http-bind-address=127.0.0.1:{port}",
                "--reporting-disabled",
                "--ui-disabled",
                "--log-level=error",
            ]
        )

        def ready() -> bool:
            if self.process.exited_early():
                raise RuntimeError(f"influxd exited during start:\n{self.process.log_tail()}")
            return influx_health(self.url).healthy

        wait_until(ready, timeout, interval=0.25, what="InfluxDB /health to pass")
        self.onboard()
        return True

    def onboard(self) -> None:
        """First start only: create org, bucket, admin user and an all-access token."""
        token_file = self.state / "token"
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/setup", timeout=5) as resp:
                allowed = json.loads(resp.read()).get("allowed", False)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"InfluxDB setup check failed: {exc}") from exc
        if not allowed:
            if not token_file.is_file():
                raise RuntimeError(
                    f"InfluxDB at {self.url} is already set up but {token_file} is missing; "
                    "remove its data directory or set ANOMSTREAM_INFLUX__TOKEN"
                )
            return
        i = self.settings.influx
        token = secrets.token_urlsafe(48)
        password = secrets.token_urlsafe(18)
        body = json.dumps(
            {
                "username": "anomstream",
                "password": password,
                "org": i.org,
                "bucket": i.bucket,
                "token": token,
                "retentionPeriodSeconds": i.retention_hours * 3600,
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.url}/api/v2/setup",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"InfluxDB onboarding failed: {exc.read().decode()}") from exc
        for path, secret in ((token_file, token), (self.state / "admin-password", password)):
            # Created 0600 from the start: never world-readable, not even for a moment.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secret + "\n")
        log.info("influxdb_onboarded", org=i.org, bucket=i.bucket, token_file=str(token_file))

    def stop(self) -> bool:
        return self.process.stop(timeout=30)

    def health(self) -> InfluxHealth:
        return influx_health(self.url)


def _replace_lines(gomod: str) -> list[str]:
    """``replace`` directives of a go.mod, single-line and block form, as single lines."""
    out: list[str] = []
    block = False
    for line in gomod.splitlines():
        stripped = line.split("//")[0].strip()
        if stripped.startswith("replace ("):
            block = True
        elif block and stripped == ")":
            block = False
        elif block and stripped:
            out.append(f"replace {stripped}")
        elif re.match(r"^replace\s+\S", stripped):
            out.append(stripped)
    return out
