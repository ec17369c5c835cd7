"""Install the locked dependencies into the project venv, with a CPU-only torch where possible.

Run by `make venv` with the venv's own Python (stdlib only; the lab is not installed yet):

    .venv/bin/python scripts/venv_sync.py --uv .venv/bin/uv

Two paths, chosen per machine and said in one line (docs/install.md has the sizes):

- cpu: Linux, and the `pytorch-cpu` index of pyproject.toml answers within a few seconds.
  `uv pip compile` resolves pyproject.toml with its [tool.uv.sources] (torch from that index)
  under requirements.lock as constraints, so every other package keeps its locked version,
  into .venv/pylock.toml (PEP 751: wheel URLs and hashes); `uv pip sync` installs exactly that.
- pypi: macOS (PyPI's wheel is the CPU build), or the index does not answer (as on this
  project's CI), or that install fails: `uv pip sync requirements.lock`, PyPI's torch with the
  CUDA libraries `import torch` loads (the rest are excluded in pyproject.toml [tool.uv]).

LAB_TORCH=cpu|pypi forces a path (cpu: no probe, no fallback); LAB_TORCH=auto is the default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INDEX_NAME = "pytorch-cpu"
PROBE_TIMEOUT_S = 5.0


def cpu_index_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The URL of the `pytorch-cpu` index declared in pyproject.toml ([[tool.uv.index]])."""
    config = tomllib.loads(pyproject.read_text())
    for index in config.get("tool", {}).get("uv", {}).get("index", []):
        if index.get("name") == INDEX_NAME:
            return index["url"]
    raise SystemExit(f"pyproject.toml declares no [[tool.uv.index]] named {INDEX_NAME!r}")


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `url`/torch/ answers within `timeout` seconds, else why not (one short phrase)."""
    request = urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except urllib.error.URLError as err:
        reason = err.reason
        return f"timed out after {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
    except TimeoutError:
        return f"timed out after {timeout:g} s"
    except OSError as err:
        return str(err)


def choose(mode: str, platform: str, url: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[str, str]:
    """('cpu' or 'pypi', the one line that says which torch and why)."""
    host = url.split("://", 1)[-1].rstrip("/")
    if mode == "pypi":
        return "pypi", "torch: PyPI build (LAB_TORCH=pypi)"
    if mode == "cpu":
        return "cpu", f"torch: CPU-only build from {host} (LAB_TORCH=cpu)"
    if platform != "linux":
        return "pypi", "torch: PyPI build (on macOS that is the CPU build)"
    start = time.monotonic()
    why = probe(url, timeout)
    if why is None:
        return "cpu", f"torch: CPU-only build from {host} (answered in {time.monotonic() - start:.1f} s)"
    return "pypi", f"torch: PyPI build, CUDA libraries included ({host} unreachable: {why})"


def run(cmd: list[str]) -> bool:
    return subprocess.run(cmd, cwd=ROOT).returncode == 0


# Byte-compile what is installed: where PYTHONDONTWRITEBYTECODE is set (this project's CI image
# sets it) Python never writes .pyc, so every process compiled torch's, sympy's, numpy's... sources
# again: a `lab run healthy --fast` took 21.5 s instead of 11.2 s, `import torch` 6.1 s instead
# of 2.9 s (measured). Costs ~40 s once, at install.
COMPILE = "--compile-bytecode"


def sync_cpu(uv: str, python: str, venv: Path) -> bool:
    pylock = venv / "pylock.toml"
    return run([uv, "pip", "compile", "-q", "--python", python, "pyproject.toml", "--extra", "dev",
                "-c", "requirements.lock", "-o", str(pylock)]) and \
        run([uv, "pip", "sync", "-q", COMPILE, "--python", python, str(pylock)])


def installed_version(python: str, name: str) -> str:
    code = f"import importlib.metadata as m\ntry: print(m.version({name!r}))\nexcept m.PackageNotFoundError: pass"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def sync_pypi(uv: str, python: str) -> bool:
    # A CPU build left by an earlier install (2.15.0+cpu) satisfies the lock's torch==2.15.0, and
    # sync would keep it beside the CUDA libraries it then adds: replace it with the locked wheel.
    local_build = "+" in installed_version(python, "torch")
    return run([uv, "pip", "sync", "-q", COMPILE, "--python", python, "requirements.lock",
                *(["--reinstall-package", "torch"] if local_build else [])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", required=True, help="the uv executable")
    parser.add_argument("--python", default=sys.executable, help="the venv's Python (default: this one)")
    parser.add_argument("--torch", default=os.environ.get("LAB_TORCH", "auto") or "auto", choices=["auto", "cpu", "pypi"],
                        help="which torch: auto (probe the CPU index), cpu, pypi (default: $LAB_TORCH or auto)")
    args = parser.parse_args(argv)

    venv = Path(args.python).absolute().parent.parent  # <venv>/bin/python (not resolved: a symlink)
    path, line = choose(args.torch, sys.platform, cpu_index_url())
    print(line, flush=True)
    if path == "cpu":
        if sync_cpu(args.uv, args.python, venv):
            return 0
        if args.torch == "cpu":
            return 1
        print("torch: the CPU-only install failed (above); falling back to the PyPI build", flush=True)
    return 0 if sync_pypi(args.uv, args.python) else 1


if __name__ == "__main__":
    sys.exit(main())
