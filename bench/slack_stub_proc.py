"""The Slack Web API stand-in (slackstub/ `SlackAPIStub`) in a process of its own, so that it
does not share a GIL with the load generator that times the acknowledgements.

`RemoteStub` starts it and reads the calls it records (one JSON line per call, in a file).

    with RemoteStub(token) as stub:
        stub.api_url            # for SLACK_API_URL
        stub.calls("chat.postMessage")   # [Call(method, params, time)], since the last clear()
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Call:
    method: str
    params: dict
    time: float


class RemoteStub:
    def __init__(self, token: str) -> None:
        self.token = token
        self._dir = tempfile.TemporaryDirectory(prefix="slackstub-")
        self.log = Path(self._dir.name) / "calls.jsonl"
        self.log.touch()
        self._offset = 0
        self.process: subprocess.Popen | None = None
        self.api_url = ""

    def __enter__(self) -> RemoteStub:
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.token, str(self.log)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.api_url = self.process.stdout.readline().strip()
        if not self.api_url.startswith("http"):
            raise RuntimeError("the Slack stand-in did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.stdin.close()  # the child exits when its stdin closes
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._dir.cleanup()

    def clear(self) -> None:
        self._offset = self.log.stat().st_size

    def calls(self, method: str | None = None) -> list[Call]:
        with self.log.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        out = []
        for line in data.decode(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line being written
            if method is None or item["method"] == method:
                out.append(Call(item["method"], item["params"], item["time"]))
        return out


def _serve(token: str, log: str) -> None:
    sys.path.insert(0, str(ROOT))
    import threading

    from slackstub.api import SlackAPIStub

    lock = threading.Lock()
    fh = open(log, "a", encoding="utf-8")  # noqa: SIM115 - open for the life of the process

    class Recording(SlackAPIStub):
        def _record(self, call) -> None:
            super()._record(call)
            params = {k: call.params.get(k) for k in ("channel", "thread_ts", "user") if k in call.params}
            with lock:
                fh.write(json.dumps({"method": call.method, "params": params, "time": call.time}) + "\n")
                fh.flush()

    with Recording(token=token) as stub:
        print(stub.api_url, flush=True)
        sys.stdin.read()  # until the parent closes it
    fh.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
