"""The escape hatches: ``python`` (a ``module:function`` in a child process) and ``shell`` (a command).

A python step's function is called with the step's ``args`` as keyword arguments, plus
``output_dir=`` (a fresh folder) when it accepts that; what it prints goes to the step's log,
its JSON-able return value becomes the output ``return``, and the files it writes to
``output_dir`` are stored in the store's artifact folder and listed in ``files``. Its ``path``
folders (default: the pipeline's folder) come first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

from modelyard.core.common.errors import JobCancelled, ModelyardError
from modelyard.core.jobs.runner import JobContext, JobSpec
from modelyard.core.pipelines.steps.base import StepContext, StepResult, need, record

# --------------------------------------------------------------------------- python


class _LogWriter(io.TextIOBase):
    """A text stream whose complete lines go to the job's log."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.buf = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buf += text
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.ctx.log(line)
        return len(text)

    def flush(self) -> None:
        if self.buf:
            self.ctx.log(self.buf)
            self.buf = ""


def split_function(function: str) -> tuple[str, str]:
    module, sep, name = str(function).partition(":")
    if not sep or not module.strip() or not name.strip():
        raise ModelyardError(f"{function!r} is not a function to call: write it as module:function "
                             "(e.g. steps.features:build).", hint="Fix 'function' in the python step's params.")
    return module.strip(), name.strip()


def python_job(ctx: JobContext, *, function: str, args: dict[str, Any] | None = None,
               path: list[str] | None = None, output_dir: str | None = None,
               cwd: str | None = None) -> dict[str, Any]:
    """Job (in a child process): call ``function`` with ``args`` (see the module docstring), in
    ``cwd`` (the pipeline's folder: relative paths in its args mean what they mean in the file)."""
    module_name, name = split_function(function)
    if cwd:
        os.chdir(cwd)  # a child process of its own: nothing else here depends on the working folder
    for folder in reversed(path or []):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelyardError(f"The module {module_name!r} of the python step cannot be imported: {exc}.",
                             hint=f"Put {module_name.replace('.', '/')}.py in the pipeline's folder or a folder "
                                  "listed in the step's 'path'.") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ModelyardError(f"{module_name} has no function {name!r}.", hint="Fix 'function' in the python step.")
    kwargs = dict(args or {})
    try:
        accepts = inspect.signature(fn).parameters
        if output_dir is not None and ("output_dir" in accepts or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in accepts.values())):
            kwargs["output_dir"] = output_dir
    except (TypeError, ValueError):
        pass
    out = _LogWriter(ctx)
    ctx.log(f"Calling {module_name}:{name}({', '.join(sorted(kwargs))}).")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            value = fn(**kwargs)
    except (JobCancelled, ModelyardError):
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function failed: say so, with its traceback in the log
        out.flush()
        ctx.log(traceback.format_exc().rstrip())
        raise ModelyardError(f"{module_name}:{name} raised {type(exc).__name__}: {exc}",
                             hint="The step's log has the traceback.") from None
    out.flush()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ModelyardError(f"{module_name}:{name} returned a {type(value).__name__}, which cannot be recorded.",
                             hint="Return JSON-able values: numbers, text, lists and dicts of them.") from None
    return {"return": value}


def python_spec(function: str, args: dict[str, Any] | None, path: list[str], output_dir: str | None,
                cwd: str | None = None) -> JobSpec:
    """The job that calls ``function`` in a child process (:func:`python_job`), in ``cwd``."""
    return JobSpec.for_kind("pipeline.python", f"Call {function}", {"function": function, "args": dict(args or {}),
                                                                    "path": list(path), "output_dir": output_dir,
                                                                    "cwd": cwd})


def shell_spec(command: str, cwd: str, env: dict[str, str] | None = None) -> JobSpec:
    """The job that runs ``command`` in ``cwd`` (:func:`shell_job`)."""
    return JobSpec.for_kind("pipeline.shell", f"Run {command[:60]}", {"command": command, "cwd": cwd,
                                                                      "env": dict(env or {})})


def _module_folders(sc: StepContext, params: dict[str, Any]) -> list[str]:
    given = params.get("path")
    items = [given] if isinstance(given, str) else list(given or [])
    return [str(sc.path(p)) for p in items] or [str(sc.folder)]


def do_python(sc: StepContext, params: dict[str, Any]) -> StepResult:
    function = str(need(params, "function", "python"))
    split_function(function)
    # in the store's temp folder, named as its temp files are: swept if this process dies
    sc.store.artifacts.tmp.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-step-", dir=sc.store.artifacts.tmp))
    try:
        result = sc.run_job(python_spec(function, params.get("args"), _module_folders(sc, params), str(out_dir),
                                        str(sc.folder)))
        files = _store_files(sc, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return StepResult({"return": result.get("return"), "files": files},
                      [record("file", f["sha256"]) for f in files])


def _store_files(sc: StepContext, folder: Path) -> list[dict[str, Any]]:
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    if not found:
        return []
    files = []
    with sc.store.write() as s:
        for p in found:
            ref = sc.store.artifacts.put_file(p, session=s)
            files.append({"name": p.relative_to(folder).as_posix(), "sha256": ref.sha256, "size": ref.size,
                          "path": str(sc.store.artifacts.path(ref.sha256))})
    for f in files:
        sc.log(f"Stored {f['name']} ({f['size']:,} bytes).")
    return files


# --------------------------------------------------------------------------- shell


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    lines.put(None)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a command and what it started (its process group; on Windows the process itself)."""
    def kill(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if os.name == "nt":
                proc.kill()
            else:
                os.killpg(proc.pid, sig)

    kill(signal.SIGTERM)
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        kill(getattr(signal, "SIGKILL", signal.SIGTERM))
        proc.wait()


def shell_job(ctx: JobContext, *, command: str, cwd: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Job: run ``command`` through the shell in ``cwd``; its output lines go to the log. A non-zero
    exit fails the job; a cancel stops the command (and what it started)."""
    full_env = {**os.environ, **{str(k): str(v) for k, v in (env or {}).items()}}
    ctx.log(f"$ {command}")
    proc = subprocess.Popen(command, shell=True, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=os.name != "nt")
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), name="modelyard-shell-output", daemon=True)
    reader.start()
    try:
        done = False
        while not done:
            if ctx.cancelled:
                raise JobCancelled()
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                done = True
            else:
                ctx.log(line)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            _stop(proc)
        reader.join(2)
        if proc.stdout is not None:
            proc.stdout.close()
    if code != 0:
        raise ModelyardError(f"The command exited with code {code}.",
                             hint="The step's log has the command and its output.")
    return {"exit_code": code}


def do_shell(sc: StepContext, params: dict[str, Any]) -> StepResult:
    command = need(params, "command", "shell")
    if isinstance(command, list):
        import shlex

        command = shlex.join(str(c) for c in command)
    cwd = sc.path(params.get("cwd") or ".")
    if not cwd.is_dir():
        raise ModelyardError(f"The folder {cwd} of the shell step does not exist.", hint="Fix the step's 'cwd'.")
    result = sc.run_job(shell_spec(str(command), str(cwd), params.get("env")))
    return StepResult({"exit_code": result.get("exit_code", 0)})
