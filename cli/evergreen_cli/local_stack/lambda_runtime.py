"""Run the template's functions in this process, as the Lambda Python runtime would."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from evergreen_cli.local_stack.resources import LOCAL_ACCOUNT_ID, LocalResources
from evergreen_cli.local_stack.template import REPO_ROOT, FunctionSpec, functions

LAYER_DIR = REPO_ROOT / "layers" / "evergreen"

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_seconds: int = 3
    deadline: float = 0.0
    identity: Any = None
    client_context: Any = None

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or f"local/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class LambdaRuntime:
    """Loads each function's handler once, in-process, and invokes it with a fresh context per call."""

    def __init__(self, local: LocalResources, root: Path = REPO_ROOT) -> None:
        self.local = local
        self.specs: dict[str, FunctionSpec] = functions(local.template, root)
        self._handlers: dict[str, Handler] = {}
        self._locks = {logical_id: threading.Lock() for logical_id in self.specs}
        self._load_lock = threading.Lock()
        self._instance = uuid.uuid4().hex[:8]
        self._saved_environment: dict[str, str | None] | None = None

    def environment(self) -> dict[str, str]:
        """The environment the functions see (the same for all four, locally)."""
        merged: dict[str, str] = {}
        for logical_id in self.specs:
            merged.update(self.local.function_environment(logical_id))
        return merged

    def apply_environment(self) -> None:
        """Put the functions' environment into os.environ (done before the first handler import)."""
        environment = self.environment()
        if self._saved_environment is None:
            self._saved_environment = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)

    def restore_environment(self) -> None:
        """Put os.environ back as it was before apply_environment()."""
        if self._saved_environment is None:
            return
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = None

    def handler(self, logical_id: str) -> Handler:
        """The function's handler, imported on first use (module-scope code runs then, as in a cold start)."""
        with self._load_lock:
            if logical_id not in self._handlers:
                self._handlers[logical_id] = self._load(self.specs[logical_id])
            return self._handlers[logical_id]

    def register(self, logical_id: str, handler: Handler, timeout: int = 3, memory_size: int = 128) -> None:
        """Serve `handler` as `logical_id` (tests use it for routes that are not in the template)."""
        if logical_id not in self.specs:
            self.specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=REPO_ROOT,
                handler="registered",
                timeout=timeout,
                memory_size=memory_size,
                environment={},
                function_name=logical_id,
            )
        self._locks.setdefault(logical_id, threading.Lock())
        self._handlers[logical_id] = handler

    def context(self, logical_id: str) -> LambdaContext:
        spec = self.specs[logical_id]
        try:
            name = self.local.function_name(logical_id)
        except KeyError:
            name = logical_id
        return LambdaContext(
            function_name=name,
            memory_limit_in_mb=spec.memory_size,
            invoked_function_arn=f"arn:aws:lambda:{self.local.region}:{LOCAL_ACCOUNT_ID}:function:{name}",
            timeout_seconds=spec.timeout,
        )

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Call the function with `event` the way Lambda would: one invocation at a time per function."""
        handler = self.handler(logical_id)
        with self._locks[logical_id]:
            return handler(event, self.context(logical_id))

    def _load(self, spec: FunctionSpec) -> Handler:
        if self._saved_environment is None:
            self.apply_environment()
        module_file, _, attribute = spec.handler.rpartition(".")
        path = spec.code_uri / f"{module_file.replace('.', '/')}.py"
        for directory in (str(spec.code_uri), str(LAYER_DIR)):
            if directory not in sys.path:
                sys.path.insert(0, directory)
        module_name = f"evergreen_function_{spec.logical_id}_{self._instance}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {path} for {spec.logical_id}")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        handler: Handler = getattr(module, attribute)
        return handler
