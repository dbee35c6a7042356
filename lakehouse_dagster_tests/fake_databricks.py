"""A fake Databricks workspace on 127.0.0.1 that really runs the tasks submitted to it.

It serves the REST endpoints that dagster-databricks' Pipes clients call through a real
``databricks-sdk`` ``WorkspaceClient`` (pointed at ``host``, with a token):

- ``jobs/runs/submit`` starts the task: a ``python_wheel_task`` runs its entry point (looked up
  in the package's metadata, as Databricks does) in a new Python process, with the Pipes
  bootstrap the task carries (a new cluster's ``spark_env_vars``, or the task's parameters), and
  an embedded Sail server standing in for the cluster's SparkSession (``SPARK_REMOTE``);
- ``jobs/runs/get`` reports PENDING, RUNNING, then TERMINATED with SUCCESS, FAILED ("Workload
  failed, see run output for details", as Databricks says) or CANCELED;
  ``jobs/runs/get-output`` the task's error and trace; ``jobs/runs/cancel`` kills the process;
- ``clusters/get`` for the clusters it knows;
- DBFS (``/api/2.0/dbfs/...``, base64 bodies, a missing path is RESOURCE_DOES_NOT_EXIST) and
  Unity Catalog volumes (``/api/2.0/fs/...``), both backed by a folder; the task's process finds
  them mounted there (``LAKEHOUSE_PIPES_MOUNT_ROOT``: ``<root>/dbfs``, ``<root>/Volumes``).

A task fails to start, as on Databricks, when its wheel is not in the workspace.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

TOKEN = "dapi-fake-token"
#: What Databricks says of a task that raised (the error itself is in the run's output).
WORKLOAD_FAILED = "Workload failed, see run output for details"
#: DBFS ``read`` returns at most this many bytes unless asked for a length (up to 1 MB).
DBFS_READ_DEFAULT = 512 * 1024

LAUNCHER = """
import sys
from importlib.metadata import distribution
package, entry_point, *parameters = sys.argv[1:]
found = [ep for ep in distribution(package).entry_points if ep.name == entry_point]
if not found:
    raise SystemExit(f"no entry point {entry_point!r} in package {package!r}")
sys.argv = [entry_point, *parameters]
found[0].load()()
"""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"{what} does not exist")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeRun:
    run_id: int
    task_run_id: int
    submitted: dict[str, Any]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    error: str | None = None
    error_trace: str | None = None
    process: subprocess.Popen | None = None
    cancel_requested: bool = False
    folder: Path | None = None
    states_seen: list[str] = field(default_factory=list)
    #: time.monotonic() at submission, at the task's process start and at its end.
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    ended_at: float | None = None

    def move(self, life_cycle_state: str, result_state: str | None = None, message: str = "") -> None:
        self.life_cycle_state, self.result_state, self.state_message = life_cycle_state, result_state, message
        self.states_seen.append(
            life_cycle_state if result_state is None else f"{life_cycle_state}/{result_state}"
        )


class FakeWorkspace:
    """The workspace: start it (a context manager), point a WorkspaceClient at ``host``."""

    def __init__(
        self,
        root: Path,
        *,
        spark_remote: str,
        python: str = sys.executable,
        pythonpath: Sequence[str] = (),
        volumes: Sequence[str] = (),
        clusters: Sequence[str] = (),
        pending_seconds: float = 0.0,
    ) -> None:
        self.root = root
        self.spark_remote = spark_remote
        self.python = python
        self.pythonpath = list(pythonpath)
        self.volumes = {v.rstrip("/") for v in volumes}
        self.clusters = set(clusters)
        self.pending_seconds = pending_seconds
        self.requests: list[Request] = []
        self.runs: dict[int, FakeRun] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        for volume in self.volumes:
            self.local(volume).mkdir(parents=True, exist_ok=True)
        (root / "dbfs").mkdir(parents=True, exist_ok=True)

    # Lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeWorkspace:
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                workspace._serve(self, "GET")

            def do_POST(self) -> None:
                workspace._serve(self, "POST")

            def do_PUT(self) -> None:
                workspace._serve(self, "PUT")

            def do_DELETE(self) -> None:
                workspace._serve(self, "DELETE")

            def do_HEAD(self) -> None:
                workspace._serve(self, "HEAD")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for run in self.runs.values():
            if run.process is not None and run.process.poll() is None:
                run.process.kill()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def host(self) -> str:
        assert self._server is not None, "start the workspace first (with ...)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client(self):
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.host, token=TOKEN)

    # What tests look at -------------------------------------------------------------------

    def submissions(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/api/2.2/jobs/runs/submit"]

    def calls(self, path_prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def local(self, path: str) -> Path:
        """Where a volume path (/Volumes/...) or a DBFS path (dbfs:/... or /...) lives."""
        if path.startswith("/Volumes/"):
            return self.root / path.lstrip("/")
        return self.root / "dbfs" / path.removeprefix("dbfs:").lstrip("/")

    def put_file(self, path: str, content: bytes) -> None:
        target = self.local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    def files_left(self, path: str) -> list[str]:
        base = self.local(path)
        return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []

    def wait_for_state(self, state: str, timeout: float = 60) -> FakeRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in list(self.runs.values()):
                if run.life_cycle_state == state:
                    return run
            time.sleep(0.05)
        raise TimeoutError(f"no run reached {state} in {timeout} s")

    # HTTP ---------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        path = unquote(url.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        is_json = path.startswith(("/api/2.2/jobs", "/api/2.1/clusters", "/api/2.0/dbfs"))
        body = json.loads(raw or b"{}") if is_json else raw
        with self._lock:
            self.requests.append(Request(method, path, query, body if is_json else None))
        try:
            if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise ApiError(401, "UNAUTHENTICATED", "invalid access token")
            status, payload, headers = self._route(method, path, query, body)
        except ApiError as error:
            status, headers = error.status, {}
            payload = {"error_code": error.code, "message": error.message}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        content_type = "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        jobs = {
            ("POST", "/api/2.2/jobs/runs/submit"): self._submit,
            ("GET", "/api/2.2/jobs/runs/get"): self._get_run,
            ("GET", "/api/2.2/jobs/runs/get-output"): self._get_output,
            ("POST", "/api/2.2/jobs/runs/cancel"): self._cancel,
            ("GET", "/api/2.1/clusters/get"): self._get_cluster,
        }
        if (method, path) in jobs:
            return 200, jobs[(method, path)](query, body), {}
        if path.startswith("/api/2.0/dbfs/"):
            return 200, self._dbfs(method, path.removeprefix("/api/2.0/dbfs/"), query, body), {}
        for kind in ("files", "directories"):
            prefix = f"/api/2.0/fs/{kind}"
            if path.startswith(prefix + "/"):
                return self._volume(method, kind, path.removeprefix(prefix), query, body)
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"the fake workspace does not serve {method} {path}")

    # Jobs ---------------------------------------------------------------------------------

    def _submit(self, query: dict, body: dict) -> dict:
        tasks = body.get("tasks") or []
        if len(tasks) != 1 or "python_wheel_task" not in tasks[0]:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "the fake runs one python_wheel_task per run")
        with self._lock:
            token = body.get("idempotency_token")
            for run in self.runs.values():
                if token and run.submitted.get("idempotency_token") == token:
                    return {"run_id": run.run_id}
            run_id = 1000 + len(self.runs)
            run = FakeRun(run_id, task_run_id=run_id + 500_000, submitted=body)
            run.states_seen.append("PENDING")
            self.runs[run_id] = run
        thread = threading.Thread(target=self._execute, args=(run,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"run_id": run_id}

    def _run(self, run_id: Any) -> FakeRun:
        run = self.runs.get(int(run_id))
        if run is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return run

    def _get_run(self, query: dict, body: Any) -> dict:
        run = self._run(query["run_id"])
        state = {"life_cycle_state": run.life_cycle_state, "state_message": run.state_message}
        if run.result_state:
            state["result_state"] = run.result_state
        task = run.submitted["tasks"][0]
        return {
            "run_id": run.run_id,
            "run_name": run.submitted.get("run_name"),
            "run_page_url": f"{self.host}/jobs/runs/{run.run_id}",
            "state": state,
            "tasks": [{"run_id": run.task_run_id, "task_key": task.get("task_key"), "state": state}],
        }

    def _get_output(self, query: dict, body: Any) -> dict:
        run_id = int(query["run_id"])
        run = next((r for r in self.runs.values() if run_id in (r.task_run_id, r.run_id)), None)
        if run is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        output: dict[str, Any] = {"metadata": {"run_id": run.task_run_id}}
        if run.error:
            output |= {"error": run.error, "error_trace": run.error_trace or ""}
        return output

    def _cancel(self, query: dict, body: dict) -> dict:
        run = self._run(body["run_id"])
        run.cancel_requested = True
        if run.life_cycle_state in ("PENDING", "RUNNING"):
            run.move("TERMINATING")
            if run.process is not None and run.process.poll() is None:
                run.process.terminate()
        return {}

    def _get_cluster(self, query: dict, body: Any) -> dict:
        cluster_id = query.get("cluster_id")
        if cluster_id not in self.clusters:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return {"cluster_id": cluster_id, "cluster_name": "fake", "state": "RUNNING"}

    def _execute(self, run: FakeRun) -> None:
        time.sleep(self.pending_seconds)
        if run.cancel_requested:
            run.move("TERMINATED", "CANCELED", "Run cancelled.")
            return
        task = run.submitted["tasks"][0]
        missing = [w for w in self._wheels(run.submitted, task) if not self.local(w).is_file()]
        if missing:
            run.error = f"Library installation failed: {', '.join(missing)} does not exist"
            run.move("INTERNAL_ERROR", "FAILED", run.error)
            return
        wheel_task = task["python_wheel_task"]
        run.folder = self.root / "runs" / str(run.run_id)
        run.folder.mkdir(parents=True)
        command = [
            self.python,
            "-c",
            LAUNCHER,
            wheel_task["package_name"],
            wheel_task["entry_point"],
            *wheel_task.get("parameters", []),
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(run.folder),
            "PYTHONUNBUFFERED": "1",
            "SPARK_REMOTE": self.spark_remote,  # the cluster's SparkSession
            "LAKEHOUSE_PIPES_MOUNT_ROOT": str(self.root),
            **({"PYTHONPATH": os.pathsep.join(self.pythonpath)} if self.pythonpath else {}),
            **(task.get("new_cluster") or {}).get("spark_env_vars", {}),
        }
        with open(run.folder / "stdout", "wb") as out, open(run.folder / "stderr", "wb") as err:
            run.started_at = time.monotonic()
            run.process = subprocess.Popen(command, env=env, cwd=run.folder, stdout=out, stderr=err)
            run.move("RUNNING")
            returncode = run.process.wait()
            run.ended_at = time.monotonic()
        stderr = (run.folder / "stderr").read_text(errors="replace").strip().splitlines()
        if run.cancel_requested:
            run.move("TERMINATED", "CANCELED", "Run cancelled.")
        elif returncode == 0:
            run.move("TERMINATED", "SUCCESS")
        else:
            run.error = stderr[-1] if stderr else f"exit status {returncode}"
            run.error_trace = "\n".join(stderr[-60:])
            run.move("TERMINATED", "FAILED", WORKLOAD_FAILED)

    @staticmethod
    def _wheels(submitted: dict, task: dict) -> list[str]:
        wheels = [library["whl"] for library in task.get("libraries", []) if "whl" in library]
        key = task.get("environment_key")
        if key is not None:
            (environment,) = [e for e in submitted.get("environments", []) if e["environment_key"] == key]
            wheels += [d for d in environment["spec"].get("dependencies", []) if d.endswith(".whl")]
        return wheels

    # DBFS ---------------------------------------------------------------------------------

    def _dbfs(self, method: str, operation: str, query: dict, body: dict) -> dict:
        path = body.get("path") if method == "POST" else query.get("path")
        if not path or not path.startswith("/"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Path must be absolute: {path}")
        local = self.local(path)
        if operation == "mkdirs":
            local.mkdir(parents=True, exist_ok=True)
            return {}
        if operation == "put":
            if local.exists() and not body.get("overwrite"):
                raise ApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"A file or directory already exists at {path}"
                )
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(base64.b64decode(body.get("contents", "")))
            return {}
        if operation == "delete":
            if local.is_dir():
                if any(local.iterdir()) and not body.get("recursive"):
                    raise ApiError(400, "IO_ERROR", f"{path} is a non-empty directory")
                shutil.rmtree(local)
            elif local.exists():
                local.unlink()
            return {}
        if not local.exists():
            raise not_found(f"No file or directory exists on path {path}.")
        if operation == "get-status":
            return self._dbfs_info(path, local)
        if operation == "list":
            children = sorted(local.iterdir()) if local.is_dir() else [local]
            return {"files": [self._dbfs_info(f"{path.rstrip('/')}/{c.name}", c) for c in children]}
        if operation == "read":
            if local.is_dir():
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path} is a directory")
            offset = int(query.get("offset", 0))
            length = min(int(query.get("length", DBFS_READ_DEFAULT)), 1024 * 1024)
            data = local.read_bytes()[offset : offset + length]
            return {"bytes_read": len(data), "data": base64.b64encode(data).decode()}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"dbfs/{operation}")

    @staticmethod
    def _dbfs_info(path: str, local: Path) -> dict:
        stat = local.stat()
        return {
            "path": path,
            "is_dir": local.is_dir(),
            "file_size": 0 if local.is_dir() else stat.st_size,
            "modification_time": int(stat.st_mtime * 1000),
        }

    # Unity Catalog volumes (Files API) ----------------------------------------------------

    def _volume(self, method: str, kind: str, path: str, query: dict, body: bytes) -> tuple[int, Any, dict]:
        parts = path.strip("/").split("/")
        volume = "/" + "/".join(parts[:4])
        if parts[0] != "Volumes" or len(parts) < 4 or volume not in self.volumes:
            raise ApiError(404, "NOT_FOUND", f"volume {volume} does not exist")
        local = self.local(path)
        if kind == "directories":
            if method == "PUT":
                local.mkdir(parents=True, exist_ok=True)
                return 204, b"", {}
            if not local.is_dir():
                raise ApiError(404, "NOT_FOUND", f"directory {path} does not exist")
            if method == "DELETE":
                if any(local.iterdir()):
                    raise ApiError(409, "DIRECTORY_NOT_EMPTY", f"directory {path} is not empty")
                local.rmdir()
                return 204, b"", {}
            if method == "HEAD":
                return 200, b"", {}
            entries = [
                {
                    "path": f"{path.rstrip('/')}/{child.name}",
                    "name": child.name,
                    "is_directory": child.is_dir(),
                    "file_size": 0 if child.is_dir() else child.stat().st_size,
                    "last_modified": int(child.stat().st_mtime * 1000),
                }
                for child in sorted(local.iterdir())
            ]
            return 200, {"contents": entries}, {}
        if method == "PUT":
            if local.exists() and query.get("overwrite") == "false":
                raise ApiError(409, "ALREADY_EXISTS", f"file {path} already exists")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(body)
            return 204, b"", {}
        if not local.is_file():
            raise ApiError(404, "NOT_FOUND", f"file {path} does not exist")
        if method == "DELETE":
            local.unlink()
            return 204, b"", {}
        headers = {"Last-Modified": formatdate(local.stat().st_mtime, usegmt=True)}
        return 200, local.read_bytes(), headers
