"""What the deployable bundle weighs and what its functions cost at cold start.

- build.layer_mb: the EvergreenLayer as built by `sam build`, unzipped (MiB);
- build.function_mb: each function's own code, unzipped (MiB, 3 decimals: handlers are a few KB);
- coldstart.init_ms: per function, the median over 5 fresh interpreters of importing its app module (module-scope
  init included: Powertools, boto3 clients, segment definitions), with sys.path = the layer's python/ dir + the
  function dir and nothing else (python -S), the environment of a Lambda with dummy values (no network at import);
- coldstart.floor_ms: the same for `import boto3; boto3.client("dynamodb")`, the floor any boto3 handler pays.

On a non-arm64 machine the built layer's compiled wheels (pydantic_core, PyYAML) cannot load, so the cold start
runs on a replica of the layer with this machine's wheels of the same pinned versions.

    uv run python bench/run.py build
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from evergreen_local.template import functions, load_template, parameter_defaults

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / ".aws-sam" / "build"
LAYER = "EvergreenLayer"
RUNS = 5
MIB = 1024 * 1024


_TIMED_IMPORT = """
import importlib.util, sys, time
started = time.perf_counter()
sys.path[:0] = [{function_dir!r}, {layer_dir!r}]
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""

_TIMED_FLOOR = """
import sys, time
started = time.perf_counter()
sys.path[:0] = [{layer_dir!r}]
import boto3
boto3.client("dynamodb")
print((time.perf_counter() - started) * 1000)
"""


def _size_mb(path: Path, digits: int = 2) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    return round(total / MIB, digits)


def _ensure_built() -> None:
    if (BUILD / LAYER / "python").is_dir():
        return
    print("   no .aws-sam/build: running `make build`", flush=True)
    subprocess.run(["make", "build"], cwd=REPO, check=True)


def _runnable_layer() -> Path:
    """The built layer's python/ dir, or on a non-arm64 host a replica with this host's wheels."""
    built = BUILD / LAYER / "python"
    if platform.machine().lower() in {"aarch64", "arm64"}:
        return built
    requirements = REPO / "layers" / "evergreen" / "requirements.txt"
    replica = REPO / ".aws-sam" / f"bench-layer-{platform.machine().lower()}" / "python"
    marker = replica / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not marker.exists() or marker.read_text() != digest:
        uv = shutil.which("uv")
        if uv is None:
            raise RuntimeError("uv is needed to install a host-arch replica of the layer")
        shutil.rmtree(replica, ignore_errors=True)
        replica.mkdir(parents=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                sys.executable,
                "--target",
                str(replica),
                "-r",
                str(requirements),
            ],
            check=True,
        )
        marker.write_text(digest)
    shutil.rmtree(replica / "evergreen", ignore_errors=True)
    shutil.copytree(built / "evergreen", replica / "evergreen")
    return replica


def _dummy_environment(template: dict[str, Any], logical_id: str) -> dict[str, str]:
    defaults = parameter_defaults(template)

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            return defaults.get(value["Ref"], f"bench-{value['Ref']}")
        if isinstance(value, dict) and "Fn::Sub" in value:
            return re.sub(r"\$\{[^}]+\}", "bench", str(value["Fn::Sub"]))
        return str(value)

    spec = functions(template, REPO)[logical_id]
    env = {name: resolve(value) for name, value in spec.environment.items()}
    env["SEGMENT_CHANGES_QUEUE_URL"] = "http://127.0.0.1:9/123456789012/bench-queue"
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        }
    )
    return env


def _median_ms(code: str, env: dict[str, str]) -> float:
    samples = []
    for _ in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"cold start run failed:\n{done.stderr[-2000:]}")
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return round(statistics.median(samples), 1)


def run() -> dict[str, object]:
    _ensure_built()
    template = load_template(REPO / "template.yaml")
    specs = functions(template, REPO)
    layer_dir = _runnable_layer()
    init_ms: dict[str, float] = {}
    for logical_id, spec in specs.items():
        module_file = spec.handler.rpartition(".")[0].replace(".", "/") + ".py"
        function_dir = BUILD / logical_id
        code = _TIMED_IMPORT.format(
            function_dir=str(function_dir), layer_dir=str(layer_dir), app=str(function_dir / module_file)
        )
        init_ms[logical_id] = _median_ms(code, _dummy_environment(template, logical_id))
    floor_env = _dummy_environment(template, next(iter(specs)))
    return {
        "build.layer_mb": _size_mb(BUILD / LAYER),
        "build.function_mb": {logical_id: _size_mb(BUILD / logical_id, 3) for logical_id in specs},
        "coldstart.init_ms": init_ms,
        "coldstart.floor_ms": _median_ms(_TIMED_FLOOR.format(layer_dir=str(layer_dir)), floor_env),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
