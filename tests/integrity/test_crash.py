"""Crash safety: ``evidence collect`` killed at any moment leaves nothing recorded as
stored that is not; the next ``verify`` is clean and the next collect completes.

- random SIGKILLs (seeded) during a real subprocess collecting a large import;
- a SIGKILL between each two steps that change durable state (before every
  database commit, before and after every link into the store, after the
  witness replace and after every unlink of an outbox file),
  injected by wrapping those operating-system/driver calls in the child process;
- a SIGTERM: the run stops, recorded failed with an ``interrupted`` error, exit 3.

After a kill, ``verify`` exits 0 with no problem (the store always holds an earlier
complete run here; with nothing stored at all it would exit 3, "nothing to check",
still with no problem). Sizes: EVIDENCE_CRASH_RECORDS, EVIDENCE_CRASH_TRIALS.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from evidence.db import tables as t

RECORDS = int(os.environ.get("EVIDENCE_CRASH_RECORDS", "2000"))
TRIALS = int(os.environ.get("EVIDENCE_CRASH_TRIALS", "20"))
DEADLINE = 60  # seconds for any one child process

# Runs the real CLI, with SIGKILL injected at the CRASH_AT-th durable step.
CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys
    import sqlalchemy as sa
    crash_at = int(os.environ.get("CRASH_AT", "0"))
    steps = [0]
    def step():
        steps[0] += 1
        if steps[0] == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
    def around(fn, before=True):
        def wrapped(*args, **kwargs):
            # Removing a store temporary file changes no state that matters.
            counted = ".tmp-" not in os.fspath(args[-1])
            if before and counted:
                step()
            result = fn(*args, **kwargs)
            if counted:
                step()
            return result
        return wrapped
    os.link = around(os.link)
    os.replace = around(os.replace, before=False)
    os.unlink = around(os.unlink, before=False)
    sa.event.listen(sa.engine.Engine, "commit", lambda conn: step())
    atexit.register(lambda: open(os.environ["STEPS_FILE"], "w").write(str(steps[0])))
    from evidence.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


class Crasher:
    def __init__(self, spine, tmp_path):
        self.spine = spine
        self.ws = spine.ws
        self.tmp = tmp_path
        self.round = 0

    def write_data(self, records: int = RECORDS) -> None:
        self.round += 1
        with (self.spine.data_dir / "in.jsonl").open("w") as out:
            for i in range(records):
                out.write(json.dumps({"id": f"r{i}", "round": self.round, "pad": "x" * 200}) + "\n")

    def start(self, crash_at: int = 0, records: int = RECORDS) -> subprocess.Popen:
        self.write_data(records)
        env = {
            **os.environ,
            "CRASH_AT": str(crash_at),
            "STEPS_FILE": str(self.tmp / "steps"),
        }
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, "--config", str(self.ws.config_path), "collect"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def assert_clean(self) -> dict:
        code, report = self.spine.verify()
        assert report["problems"] == [], json.dumps(report, indent=1)
        assert code == 0, report
        return report

    def recover(self) -> None:
        """A new collect completes, and everything is published and clean."""
        self.write_data(records=10)
        result = self.ws.cli("collect", "--json")
        assert result.code == 0, result.out + result.err
        assert result.json()["runs"][0]["stored"] is True
        report = self.assert_clean()
        assert report["checked"]["pending"] == 0
        rows = self.spine.rows(t.runs)
        assert not [r for r in rows if r["status"] == "running"]
        assert not [r for r in self.spine.rows(t.artifacts) if r["state"] != "stored"]
        assert not list((self.ws.state_dir / "outbox").iterdir())
        self.assert_no_partial_files()

    def assert_no_partial_files(self) -> None:
        for path in self.spine.store.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                assert path.stat().st_mode & 0o222 == 0, f"{path} is writable"


@pytest.fixture
def crasher(spine, tmp_path):
    crasher = Crasher(spine, tmp_path)
    proc = crasher.start()  # one complete run first, to time it
    began = time.monotonic()
    _out, err = proc.communicate(timeout=DEADLINE)
    crasher.duration = time.monotonic() - began
    assert proc.returncode == 0, err.decode()
    crasher.steps = int((tmp_path / "steps").read_text())
    proc = crasher.start()  # and once more, to time its start-up until it spools
    crasher.startup = _spooling(crasher.ws.state_dir / "outbox", proc)
    proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0
    crasher.assert_clean()
    return crasher


def _spooling(outbox, proc: subprocess.Popen) -> float:
    """Wait until the child has started its run (its spool file exists)."""
    began = time.monotonic()
    while time.monotonic() - began < DEADLINE and proc.poll() is None:
        if outbox.exists() and any(outbox.glob("*.jsonl")):
            break
        time.sleep(0.005)
    return time.monotonic() - began


def _kill_after(proc: subprocess.Popen, delay: float) -> None:
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)


@pytest.mark.slow
def test_random_sigkill_then_verify_clean_and_collect_again(crasher):
    rng = random.Random(20261126)
    phases: dict[str, int] = {}
    outbox = crasher.ws.state_dir / "outbox"
    work = max(crasher.duration - crasher.startup, 0.05)
    for trial in range(TRIALS):
        proc = crasher.start()
        if trial % 4 == 0:  # start-up: recovery of earlier runs, the outbox, the run row
            _kill_after(proc, rng.uniform(0.0, crasher.startup))
        else:  # the run itself: spooling, recording, publishing
            _spooling(outbox, proc)
            _kill_after(proc, rng.uniform(0.0, work * 1.1))
        runs = crasher.spine.rows(t.runs)
        pending = [a for a in crasher.spine.rows(t.artifacts) if a["state"] == "pending"]
        phase = (
            "finished" if proc.returncode == 0
            else "pending" if pending
            else "running" if any(r["status"] == "running" for r in runs)
            else "before-run"
        )
        phases[phase] = phases.get(phase, 0) + 1
        crasher.assert_clean()
        crasher.assert_no_partial_files()
        crasher.recover()
    print(f"crash phases over {TRIALS} trials: {phases}")


@pytest.mark.slow
def test_sigkill_before_and_after_every_durable_step(crasher):
    assert crasher.steps >= 10, crasher.steps
    print(f"{crasher.steps} durable steps in one collect")
    for crash_at in range(1, crasher.steps + 1):
        proc = crasher.start(crash_at, records=200)
        proc.communicate(timeout=DEADLINE)
        assert proc.returncode == -signal.SIGKILL, (crash_at, proc.returncode)
        crasher.assert_clean()
        crasher.assert_no_partial_files()
        crasher.recover()


def test_sigterm_stops_cleanly_with_the_run_recorded_interrupted(crasher):
    before = {k: crasher.spine.path(k).read_bytes() for k in crasher.spine.store_keys()}
    artifacts_before = len(crasher.spine.rows(t.artifacts))
    observations_before = crasher.spine.rows(t.observations)
    proc = crasher.start()
    spool_dir = crasher.ws.state_dir / "outbox"
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:  # wait until records are being spooled
        spools = list(spool_dir.glob("*.jsonl")) if spool_dir.exists() else []
        if spools and spools[0].stat().st_size > 50_000:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 3, err.decode()
    assert b"Traceback" not in err
    assert b"interrupted" in err.lower() or b"SIGTERM" in err
    runs = sorted(crasher.spine.rows(t.runs), key=lambda r: r["started_at"])
    last = runs[-1]
    assert last["status"] == "failed"
    assert [e["code"] for e in last["errors"]] == ["interrupted"]
    assert "SIGTERM" in last["errors"][0]["message"]
    assert len(crasher.spine.rows(t.artifacts)) == artifacts_before  # none for this run
    assert not list(spool_dir.iterdir())
    after = {k: crasher.spine.path(k).read_bytes() for k in crasher.spine.store_keys()}
    assert after == before
    # the interrupted run changed no observation (they are applied only at its end)
    assert crasher.spine.rows(t.observations) == observations_before
    crasher.assert_clean()
    crasher.recover()
