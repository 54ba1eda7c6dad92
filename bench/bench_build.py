"""What the deployable bundle weighs and what its functions cost at cold start.

- build.layer_mb: the EvergreenLayer as built by `sam build`, unzipped (MiB);
- build.function_mb: each function's own code, unzipped (MiB, 3 decimals: handlers are a few KB);
- coldstart.init_ms: per function, the median over 7 fresh interpreters of importing its app module (module-scope
  init included: Powertools, boto3 clients, segment definitions), with sys.path = the function dir, the layer's
  python/ dir and a stand-in for the runtime's boto3 (/var/runtime), nothing else (python -S), and the environment
  the template gives the function with its parameter defaults (tracing off) and dummy values (no network at import);
- coldstart.init_ms_tracing_active: the same with the `Tracing` parameter at Active (Powertools Tracer, X-Ray SDK);
- coldstart.floor_ms: the same for `import boto3; boto3.client("dynamodb")`, the floor any boto3 handler pays;
- coldstart.ratio: init_ms / floor_ms per function (the goal is <= 1.3);
- coldstart.init_cpu_ms, init_cpu_ms_tracing_active, floor_cpu_ms, ratio_cpu: the same in CPU time of the
  interpreter, which other load on a shared machine disturbs far less than wall time.

Each round starts the floor and every function once, so load on the machine hits them alike; each figure is the
median over the rounds. No run writes bytecode (PYTHONDONTWRITEBYTECODE), as on Lambda, where /opt is read-only:
what the layer does not ship compiled is compiled at every cold start.

The layer does not ship boto3/botocore (the python3.13 runtime provides them, see docs/architecture.md), so the
runtime stand-in holds the boto3 and botocore versions uv.lock pins, with their bytecode (assumed precompiled in the
runtime). On a non-arm64 machine the built layer's compiled wheels (pydantic_core, PyYAML) cannot load, so the cold
start runs on the same build (layers/evergreen/Makefile) with this machine's wheels of the same pinned versions.

    uv run python bench/run.py build
    EVERGREEN_BUILD_DIR=/tmp/build uv run python bench/run.py build   # a build made elsewhere
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
import tomllib
from pathlib import Path
from typing import Any

from evergreen_cli.local_stack.template import functions, load_template, parameter_defaults

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("EVERGREEN_BUILD_DIR") or REPO / ".aws-sam" / "build")
LAYER = "EvergreenLayer"
LAYER_SOURCE = REPO / "layers" / "evergreen"
TRACING_LAYER = "TracingLayer"
RUNS = 7
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
"""What the python3.13 Lambda runtime provides in /var/runtime (and the layer therefore leaves out)."""
MIB = 1024 * 1024


_TIMED_IMPORT = """
import importlib.util, sys, time
started, cpu = time.perf_counter(), time.process_time()
sys.path[:0] = [{function_dir!r}, *{layer_dirs!r}, {runtime_dir!r}]
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""

_TIMED_FLOOR = """
import sys, time
started, cpu = time.perf_counter(), time.process_time()
sys.path[:0] = [{layer_dir!r}, {runtime_dir!r}]
import boto3
boto3.client("dynamodb")
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""


def _size_mb(path: Path, digits: int = 2) -> float:
    """Unzipped size of every file, bytecode included (the layer ships it; bench runs never write any)."""
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return round(total / MIB, digits)


def _ensure_built() -> None:
    if (BUILD / LAYER / "python").is_dir():
        return
    print("   no .aws-sam/build: running `make build`", flush=True)
    subprocess.run(["make", "build"], cwd=REPO, check=True)


def _host_layer(logical_id: str) -> Path:
    """The layer as layers/evergreen/Makefile builds it, with this host's wheels, in .aws-sam/bench-<id>-<arch>/python.

    Rebuilt when the requirements, the Makefile, build_layer.py or the evergreen package change.
    """
    machine = platform.machine().lower()
    target = REPO / ".aws-sam" / f"bench-{logical_id}-{machine}"
    sources = [LAYER_SOURCE / name for name in ("Makefile", "build_layer.py", "requirements.txt")]
    sources += [LAYER_SOURCE / "tracing-requirements.txt"]
    package = (LAYER_SOURCE / "evergreen").rglob("*")
    sources += sorted(p for p in package if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    marker = target / ".sources.sha256"
    if not marker.exists() or marker.read_text() != digest:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(
            ["make", "-s", f"build-{logical_id}", f"ARTIFACTS_DIR={target}", f"PLATFORM={machine}-manylinux2014"],
            cwd=LAYER_SOURCE,
            check=True,
        )
        marker.write_text(digest)
    return target / "python"


def _runnable_layer() -> Path:
    """The built layer's python/ dir, or on a non-arm64 host the same build with this host's wheels."""
    if platform.machine().lower() in {"aarch64", "arm64"}:
        return BUILD / LAYER / "python"
    return _host_layer(LAYER)


def _tracing_layer() -> Path:
    """The tracing layer (Tracing=Active only): as built when it was and this host is arm64, else built for the host."""
    built = BUILD / TRACING_LAYER / "python"
    if platform.machine().lower() in {"aarch64", "arm64"} and built.is_dir():
        return built
    return _host_layer(TRACING_LAYER)


def _locked_versions(names: tuple[str, ...]) -> list[str]:
    """`name==version` for each of `names` as uv.lock pins it."""
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    pinned = {package["name"]: package["version"] for package in lock["package"] if "version" in package}
    return [f"{name}=={pinned[name]}" for name in names if name in pinned]


def _runtime_sdk() -> Path:
    """A stand-in for the Lambda runtime's /var/runtime: boto3, botocore and their dependencies, as uv.lock pins."""
    pins = _locked_versions(RUNTIME_SDK)
    runtime = REPO / ".aws-sam" / f"bench-runtime-{platform.machine().lower()}"
    marker = runtime / ".requirements"
    if marker.exists() and marker.read_text() == "\n".join(pins):
        return runtime
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to install a stand-in for the Lambda runtime's boto3")
    shutil.rmtree(runtime, ignore_errors=True)
    runtime.mkdir(parents=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            sys.executable,
            "--target",
            str(runtime),
            "--no-deps",
            "--compile-bytecode",
            *pins,
        ],
        check=True,
    )
    marker.write_text("\n".join(pins))
    return runtime


def _dummy_environment(
    template: dict[str, Any], logical_id: str, parameters: dict[str, str] | None = None
) -> dict[str, str]:
    defaults = {**parameter_defaults(template), **(parameters or {})}
    mappings = template.get("Mappings", {})

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            return defaults.get(value["Ref"], f"bench-{value['Ref']}")
        if isinstance(value, dict) and "Fn::Sub" in value:
            return re.sub(r"\$\{[^}]+\}", "bench", str(value["Fn::Sub"]))
        if isinstance(value, dict) and "Fn::FindInMap" in value:
            name, top, second = (resolve(part) for part in value["Fn::FindInMap"])
            return str(mappings[name][top][second])
        return str(value)

    spec = functions(template, REPO)[logical_id]
    env = {name: resolve(value) for name, value in spec.environment.items()}
    env["SEGMENT_CHANGES_QUEUE_URL"] = "http://127.0.0.1:9/123456789012/bench-queue"
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
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


def _sample_ms(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one fresh interpreter running `code`."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold start run failed:\n{done.stderr[-2000:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def _medians_ms(runs: dict[str, tuple[str, dict[str, str]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Each (code, environment) started once per round, RUNS rounds; the median wall and CPU time per name."""
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(RUNS):
        for name, (code, env) in runs.items():
            wall, cpu = _sample_ms(code, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return (
        {name: round(statistics.median(values), 1) for name, values in walls.items()},
        {name: round(statistics.median(values), 1) for name, values in cpus.items()},
    )


def run() -> dict[str, object]:
    _ensure_built()
    template = load_template(REPO / "template.yaml")
    specs = functions(template, REPO)
    layer_dir = _runnable_layer()
    tracing_dir = _tracing_layer()
    runtime_dir = _runtime_sdk()
    floor_env = _dummy_environment(template, next(iter(specs)))
    runs: dict[str, tuple[str, dict[str, str]]] = {
        "floor": (_TIMED_FLOOR.format(layer_dir=str(layer_dir), runtime_dir=str(runtime_dir)), floor_env)
    }
    for logical_id, spec in specs.items():
        module_file = spec.handler.rpartition(".")[0].replace(".", "/") + ".py"
        function_dir = BUILD / logical_id
        app = str(function_dir / module_file)
        code = _TIMED_IMPORT.format(
            function_dir=str(function_dir), layer_dirs=[str(layer_dir)], runtime_dir=str(runtime_dir), app=app
        )
        traced = _TIMED_IMPORT.format(
            function_dir=str(function_dir),
            layer_dirs=[str(layer_dir), str(tracing_dir)],
            runtime_dir=str(runtime_dir),
            app=app,
        )
        runs[logical_id] = (code, _dummy_environment(template, logical_id))
        runs[f"{logical_id}+tracing"] = (traced, _dummy_environment(template, logical_id, {"Tracing": "Active"}))
    medians, cpu = _medians_ms(runs)
    floor = medians["floor"]
    return {
        "build.layer_mb": _size_mb(BUILD / LAYER),
        "build.function_mb": {logical_id: _size_mb(BUILD / logical_id, 3) for logical_id in specs},
        "coldstart.init_ms": {logical_id: medians[logical_id] for logical_id in specs},
        "coldstart.init_ms_tracing_active": {logical_id: medians[f"{logical_id}+tracing"] for logical_id in specs},
        "coldstart.floor_ms": floor,
        "coldstart.ratio": {logical_id: round(medians[logical_id] / floor, 2) for logical_id in specs},
        "coldstart.init_cpu_ms": {logical_id: cpu[logical_id] for logical_id in specs},
        "coldstart.init_cpu_ms_tracing_active": {logical_id: cpu[f"{logical_id}+tracing"] for logical_id in specs},
        "coldstart.floor_cpu_ms": cpu["floor"],
        "coldstart.ratio_cpu": {logical_id: round(cpu[logical_id] / cpu["floor"], 2) for logical_id in specs},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
