"""The local stack's supervisor kills what a crashed service left running before it restarts
it (stack/stack.py: ``become_subreaper``, ``kill_leftovers``), and kills a service its
liveness probe finds unhealthy for too long (``LIVENESS``), then restarts it. The whole supervisor loop on
the real stack is covered by tests/e2e/test_stack.py (the scheduler SIGKILL test)."""
from __future__ import annotations

import json
import subprocess
import sys
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
