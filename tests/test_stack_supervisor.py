"""The local stack's supervisor kills what a crashed service left running before it restarts
it (stack/stack.py: ``become_subreaper``, ``kill_leftovers``). The whole supervisor loop on
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
