"""The local stack's supervisor kills what a crashed service left running before it restarts
it (stack/stack.py: ``become_subreaper``, ``kill_leftovers``), and kills a service its
liveness probe finds unhealthy for too long (``LIVENESS``), then restarts it. The whole supervisor loop on
the real stack is covered by tests/e2e/test_stack.py (the scheduler SIGKILL test)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STACK_DIR = Path(__file__).resolve().parents[1] / "stack"

# A "service" (sh) that starts a grandchild (sleep) in the background and dies: the sleep is
# orphaned; as the subreaper, the supervisor process becomes its parent and kills it.
SUPERVISOR = f"""
import json, subprocess, sys, time
sys.path.insert(0, {str(STACK_DIR)!r})
import psutil, stack
subreaper = stack.become_subreaper()
pid = int(subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True).stdout)
time.sleep(0.3)
adopted = [p.pid for p in psutil.Process().children()]
killed = stack.kill_leftovers()
print(json.dumps({{"subreaper": subreaper, "orphan": pid, "adopted": adopted, "killed": killed,
                  "orphan_alive": psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"}}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux only")
def test_a_dead_services_orphans_are_adopted_and_killed():
    result = json.loads(subprocess.run([sys.executable, "-c", SUPERVISOR], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    assert result["subreaper"] is True
    assert result["adopted"] == [result["orphan"]]      # re-parented to the supervisor, not to init
    assert result["killed"] == 1 and not result["orphan_alive"]


def test_kill_leftovers_with_no_children_kills_nothing():
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(STACK_DIR)!r}); "
                          "import stack; print(stack.kill_leftovers())"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "0"


# The supervisor loop with a fake stack: the "service" is `sleep 300`, its health probe says
# what HEALTHY says. Probes start at once and run every 0.2 s; 1 s unhealthy means SIGKILL.
SUPERVISED = f"""
import sys
sys.path.insert(0, {str(STACK_DIR)!r})
from pathlib import Path
import stack

HEALTHY = sys.argv[2] == "healthy"

class FakeStack:
    dir = run = Path(sys.argv[1])
    def command(self, service):
        return ["sleep", "300"], None
    def health(self, service):
        return HEALTHY, "fake probe"

stack.LIVENESS = {{"svc": (0.0, 1.0)}}
stack.PROBE_EVERY_S = 0.2
stack.supervise(FakeStack(), "svc")
"""


def _supervise_for(tmp_path: Path, health: str, seconds: float) -> dict:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-c", SUPERVISED, str(tmp_path), health],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return json.loads((tmp_path / "svc.json").read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor is for the Linux stack")
def test_a_hung_unhealthy_service_is_killed_by_its_liveness_probe_and_restarted(tmp_path):
    record = _supervise_for(tmp_path, "unhealthy", 8.0)   # kill at ~1 s, restart 4 s later
    assert record["liveness_kills"] >= 1
    assert record["starts"] >= 2                          # restarted after each kill
    killed = [e for e in record["exits"] if not e["requested"]]
    assert killed and all(e["rc"] == -9 for e in killed)  # SIGKILL, not a clean exit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor is for the Linux stack")
def test_a_healthy_service_is_left_alone_by_its_liveness_probe(tmp_path):
    record = _supervise_for(tmp_path, "healthy", 3.0)
    assert record["liveness_kills"] == 0 and record["starts"] == 1
    assert [e["requested"] for e in record["exits"]] == [True]


# ---- pid files outlive their processes: `down` signals only this stack's supervisors ----

def _stack_module():
    sys.path.insert(0, str(STACK_DIR))
    import stack

    return stack


def _write_runtime(folder: Path, service: str, **record) -> None:
    (folder / "run").mkdir(parents=True, exist_ok=True)
    (folder / "run" / f"{service}.json").write_text(json.dumps({"service": service, "starts": 1, **record}))


def _running(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_down_leaves_an_unrelated_process_with_a_recorded_pid_alone(tmp_path):
    """A pid file left by an earlier stack (a second `down`, a reboot, pid reuse) names an
    unrelated process group leader: `down` must not signal it, `up` must not take it for a
    running stack, and the stale pids are cleared."""
    stack = _stack_module()
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        st = stack.Stack(tmp_path)
        _write_runtime(tmp_path, "triggerer", supervisor_pid=other.pid, pid=other.pid)
        assert st.supervisor_pid("triggerer") is None and st.service_pid("triggerer") is None
        assert stack.cmd_down(st, None) == 0
        time.sleep(0.3)
        assert _running(other)                                     # neither SIGTERM nor killpg
        record = st.runtime("triggerer")
        assert record["supervisor_pid"] is None and record["pid"] is None and record["starts"] == 1
    finally:
        other.kill()
        other.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_signals_this_stacks_supervisor_and_its_process_group(tmp_path):
    """A process whose command line is this stack's supervisor of the service is stopped, with
    what it left in its process group; a supervisor of another stack folder is not."""
    stack = _stack_module()
    sleeper = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    ours = subprocess.Popen([sys.executable, "-c", sleeper, "--dir", str(tmp_path.resolve()), "_supervise",
                             "scheduler"], start_new_session=True)
    theirs = subprocess.Popen([sys.executable, "-c", sleeper, "--dir", str(tmp_path / "elsewhere"),
                               "_supervise", "scheduler"], start_new_session=True)
    try:
        time.sleep(0.5)
        import psutil

        child = psutil.Process(ours.pid).children()[0]
        st = stack.Stack(tmp_path)
        _write_runtime(tmp_path, "scheduler", supervisor_pid=ours.pid, pid=child.pid)
        assert st.supervisor_pid("scheduler") == ours.pid and st.service_pid("scheduler") == child.pid
        st.stop("scheduler", timeout_s=10)
        ours.wait(timeout=10)
        assert psutil.wait_procs([child], timeout=10)[1] == []   # the group's orphan is gone too
        assert st.runtime("scheduler")["supervisor_pid"] is None

        _write_runtime(tmp_path, "scheduler", supervisor_pid=theirs.pid, pid=None)
        st.stop("scheduler", timeout_s=1)
        time.sleep(0.3)
        assert _running(theirs)
    finally:
        for proc in (ours, theirs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_kills_what_a_dead_supervisor_left_in_its_group_only_when_it_is_this_stacks(tmp_path):
    """A supervisor killed with -9 leaves its service running in its process group: `down`
    kills those processes when they are this stack's (working folder in the stack folder),
    and leaves a group of the same kind elsewhere alone."""
    import psutil

    stack = _stack_module()
    leave = "import subprocess, sys; print(subprocess.Popen(['sleep', '300']).pid, flush=True)"
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "st").mkdir()
    elsewhere.mkdir()
    orphans = {}
    for name, cwd in (("ours", tmp_path / "st"), ("theirs", elsewhere)):
        leader = subprocess.Popen([sys.executable, "-c", leave], cwd=cwd, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        orphans[name] = (leader.pid, int(leader.stdout.readline()))
        leader.wait()
    try:
        st = stack.Stack(tmp_path / "st")
        for name in ("ours", "theirs"):
            leader, orphan = orphans[name]
            assert psutil.pid_exists(orphan) and os.getpgid(orphan) == leader
            _write_runtime(tmp_path / "st", "scheduler", supervisor_pid=leader, pid=orphan)
            st.stop("scheduler", timeout_s=1)
            time.sleep(0.3)
            gone = not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
            assert gone == (name == "ours"), name
            assert st.runtime("scheduler")["supervisor_pid"] is None
    finally:
        for _, orphan in orphans.values():
            try:
                os.kill(orphan, signal.SIGKILL)
            except ProcessLookupError:
                pass
