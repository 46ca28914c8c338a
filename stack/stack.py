#!/usr/bin/env python3
"""A local, production-shaped stack on 127.0.0.1: PostgreSQL, Airflow 3 (LocalExecutor) and a
Spark standalone cluster, the topology of ``docker-compose.yml`` without containers.

Services, started in this order and stopped in the reverse one:

- ``postgres``: Debian's PostgreSQL from a private data folder (``initdb`` on first start),
  run as the user ``postgres`` when started by root (PostgreSQL refuses to run as root);
- ``airflow db migrate`` (one shot, against that database);
- ``spark-master`` and ``spark-worker-1``, ``spark-worker-2``: the venv's pyspark
  (``spark-class org.apache.spark.deploy.{master.Master,worker.Worker}``);
- ``api-server``, ``scheduler`` (LocalExecutor), ``dag-processor``, ``triggerer``.

Each long-running service runs under a small supervisor (``stack.py _supervise NAME``) that
restarts it when it exits without being asked to, like compose's ``restart: unless-stopped``.
As a container's restart would, it first kills whatever the exited process left running (the
supervisor is a child subreaper, so those orphans are its children): Airflow's serve-logs and
health-check servers and LocalExecutor workers forked from a killed scheduler would otherwise
keep its ports and copies of its database connections (seen in CI: the restarted scheduler
never scheduled a task again, most likely because an open transaction on such a connection
kept row locks its ``SKIP LOCKED`` queries skip). ``stack.py kill NAME`` sends a signal to the
service process only (a crash),
``stack.py restart NAME`` stops it cleanly and waits until it is healthy again.

Everything lives in one folder (``--dir``, default ``$MINING_STACK_DIR`` or ``stack/run``):
``state.json`` (ports, URLs), ``env.json`` and ``env.sh`` (0600: the environment of every
service; ``source env.sh`` points the ``airflow`` CLI at the stack), ``logs/`` (one file per
service, Airflow task logs in ``logs/airflow/``, Spark executor logs in ``logs/spark-apps/``),
``pg/`` (database), ``airflow/`` (``AIRFLOW_HOME``, the admin password file), ``data/`` (default
``MINING_LOGS`` and ``MINING_OUT``). Ports are free ones chosen at ``up``.

The caller's ``MINING_*`` variables (logs, outputs, pseudonymization key, sensor timings, Spark
sizing) and ``AIRFLOW__*`` overrides are passed to every service, except the settings the stack
owns (database, executor, ports, secrets). Only the standard library and psutil/psycopg2 from
the venv are used; run it with the venv's Python (``make stack-up``).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SERVICES = ("postgres", "spark-master", "spark-worker-1", "spark-worker-2",
            "api-server", "scheduler", "dag-processor", "triggerer")
#: Ports chosen at ``up``: name → what listens there.
PORTS = ("postgres", "spark_master", "spark_master_ui", "spark_worker_1", "spark_worker_1_ui",
         "spark_worker_2", "spark_worker_2_ui", "api", "scheduler_health", "worker_log_server",
         "trigger_log_server")
#: Settings the stack owns: a caller's value for these is ignored.
OWNED_PREFIXES = ("AIRFLOW__DATABASE__", "AIRFLOW__API_AUTH__", "AIRFLOW__API__", "AIRFLOW__LOGGING__",
                  "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__CORE__DAGS_FOLDER",
                  "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER",
                  "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK")
STOP_SIGNAL = {"postgres": signal.SIGINT}   # PostgreSQL: SIGINT = fast shutdown (SIGTERM waits for clients)
ADMIN_USER = "admin"


class StackError(RuntimeError):
    """A service did not start or did not become healthy; the message names it and its log."""


# --- folder, state, environment ------------------------------------------------------------


def default_dir() -> Path:
    return Path(os.environ.get("MINING_STACK_DIR") or REPO / "stack" / "run").resolve()


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (it may hold secrets), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def free_ports(names) -> dict[str, int]:
    """One free TCP port on 127.0.0.1 per name (all sockets held open while choosing, so no
    two names get the same port)."""
    socks, ports = [], {}
    try:
        for name in names:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports[name] = s.getsockname()[1]
    finally:
        for s in socks:
            s.close()
    return ports


def postgres_bin() -> Path:
    """Folder of Debian's PostgreSQL server programs (the newest /usr/lib/postgresql/<v>/bin),
    else the one of ``postgres`` on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    which = shutil.which("postgres")
    if which:
        return Path(which).resolve().parent
    raise StackError("PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)")


def pg_user() -> str | None:
    """The user PostgreSQL runs as: ``postgres`` when we are root (it refuses root), else us."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise StackError("running as root needs the user 'postgres' (Debian's postgresql package creates it)") \
            from error
    return "postgres"


class Stack:
    """The stack in one folder: its state, environment and services."""

    def __init__(self, folder: Path):
        self.dir = Path(folder).resolve()
        self.logs = self.dir / "logs"
        self.run = self.dir / "run"

    # state
    @property
    def state(self) -> dict:
        return read_json(self.dir / "state.json", {})

    @property
    def env(self) -> dict[str, str]:
        env = read_json(self.dir / "env.json")
        if env is None:
            raise StackError(f"no stack in {self.dir} (run `stack.py up` first)")
        return env

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def runtime(self, service: str) -> dict:
        """What the service's supervisor last wrote: supervisor_pid, pid, starts, last_exit."""
        return read_json(self.run / f"{service}.json", {})

    # environment
    def configure(self, worker_cores: int, worker_memory: str, parallelism: int) -> None:
        """Choose ports, create secrets (kept across restarts of the stack), write state and env."""
        for sub in (self.logs / "airflow", self.logs / "spark-apps", self.run, self.dir / "airflow",
                    self.dir / "data"):
            sub.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)   # PostgreSQL (another user) must reach pg/ inside
        secret_file = self.dir / "secrets.json"
        secret = read_json(secret_file) or {
            "db_password": secrets.token_urlsafe(24), "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32), "admin_password": secrets.token_urlsafe(16),
            "fernet_key": __import__("base64").urlsafe_b64encode(os.urandom(32)).decode(),
        }
        write_private(secret_file, json.dumps(secret, indent=2))
        password_file = self.dir / "airflow" / "passwords.json"
        write_private(password_file, json.dumps({ADMIN_USER: secret["admin_password"]}))
        ports = free_ports(PORTS)
        api = f"http://127.0.0.1:{ports['api']}"
        state = {
            "dir": str(self.dir), "repo": str(REPO), "venv_bin": str(VENV_BIN), "ports": ports,
            "api_url": api, "spark_master": f"spark://127.0.0.1:{ports['spark_master']}",
            "spark_master_ui": f"http://127.0.0.1:{ports['spark_master_ui']}",
            "admin_user": ADMIN_USER, "admin_password_file": str(password_file),
            "pg_bin": str(postgres_bin()), "pg_user": pg_user(), "worker_cores": worker_cores,
            "worker_memory": worker_memory, "started_at": time.time(),
        }
        write_private(self.dir / "state.json", json.dumps(state, indent=2))

        caller = {k: v for k, v in os.environ.items()
                  if k.startswith(("MINING_", "MINING__")) or (k.startswith("AIRFLOW__") and not k.startswith(OWNED_PREFIXES))}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MINING_", "PYSPARK", "SPARK_"))}
        db = f"postgresql+psycopg2://airflow:{secret['db_password']}@127.0.0.1:{ports['postgres']}/airflow"
        env.update({
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "HF_HUB_OFFLINE": "1",
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": "512m",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "AIRFLOW_HOME": str(self.dir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ports["api"]),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secret["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "airflow"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_log_server"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_log_server"]),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["scheduler_health"]),
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "spark://127.0.0.1",
                                                      "port": ports["spark_master"]}),
            "MINING_LOGS": str(self.dir / "data" / "logs"),
            "MINING_OUT": str(self.dir / "data" / "mining"),
        })
        env.update(caller)
        write_private(self.dir / "env.json", json.dumps(env, indent=2, sort_keys=True))
        shown = {k: v for k, v in env.items() if k.startswith(("AIRFLOW", "MINING", "SPARK_", "PYSPARK", "HF_"))}
        lines = ["# source me: the airflow CLI and spark-submit then talk to the stack in " + str(self.dir)]
        lines += [f"export {k}={shlex_quote(v)}" for k, v in sorted(shown.items())]
        lines += [f"export PATH={shlex_quote(str(VENV_BIN))}:\"$PATH\""]
        write_private(self.dir / "env.sh", "\n".join(lines) + "\n")

    # commands of the services
    def command(self, service: str) -> tuple[list[str], str | None]:
        """``(argv, user)`` of a service; ``user`` is None for the current user."""
        st, ports = self.state, self.state["ports"]
        spark_class = str(VENV_BIN / "spark-class")
        if service == "postgres":
            return ([f"{st['pg_bin']}/postgres", "-D", str(self.dir / "pg" / "data"),
                     "-c", "listen_addresses=127.0.0.1", "-c", f"port={ports['postgres']}",
                     "-c", f"unix_socket_directories={self.dir / 'pg'}", "-c", "max_connections=200"],
                    st["pg_user"])
        if service == "spark-master":
            return ([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(ports["spark_master"]), "--webui-port", str(ports["spark_master_ui"])], None)
        if service.startswith("spark-worker-"):
            n = service.rsplit("-", 1)[1]
            work = self.logs / "spark-apps" / f"worker-{n}"
            work.mkdir(parents=True, exist_ok=True)
            return ([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                     "--port", str(ports[f"spark_worker_{n}"]), "--webui-port", str(ports[f"spark_worker_{n}_ui"]),
                     "--cores", str(st["worker_cores"]), "--memory", st["worker_memory"],
                     "--work-dir", str(work), st["spark_master"]], None)
        airflow = str(VENV_BIN / "airflow")
        if service == "api-server":
            return [airflow, "api-server", "--host", "127.0.0.1", "--port", str(ports["api"]), "--workers", "1"], None
        if service in ("scheduler", "dag-processor", "triggerer"):
            return [airflow, service], None
        raise StackError(f"unknown service {service!r}; services: {', '.join(SERVICES)}")

    # health
    def health(self, service: str) -> tuple[bool, str]:
        """``(healthy, detail)`` of one service, from its own endpoint or the database."""
        ports = self.state["ports"]
        if not self.service_pid(service):
            return False, "process not running"
        try:
            if service == "postgres":
                import psycopg2

                secret = read_json(self.dir / "secrets.json")
                with psycopg2.connect(host="127.0.0.1", port=ports["postgres"], user="airflow",
                                      password=secret["db_password"], dbname="postgres", connect_timeout=3) as c:
                    c.cursor().execute("SELECT 1")
                return True, "accepts connections"
            if service.startswith("spark-"):
                master = http_json(f"{self.state['spark_master_ui']}/json/")
                if service == "spark-master":
                    return master.get("status") == "ALIVE", f"status {master.get('status')}"
                ui = ports[f"spark_worker_{service.rsplit('-', 1)[1]}_ui"]
                states = [w["state"] for w in master.get("workers", []) if w.get("webuiaddress", "").endswith(f":{ui}")]
                return "ALIVE" in states, f"registered with the master as {states or 'nothing'}"
            if service == "scheduler":
                http_json(f"http://127.0.0.1:{ports['scheduler_health']}/health")
                return True, "health endpoint 200"
            report = http_json(f"{self.state['api_url']}/api/v2/monitor/health")
            if service == "api-server":
                status = report.get("metadatabase", {}).get("status")
                return status == "healthy", f"metadatabase {status}"
            key = {"dag-processor": "dag_processor", "triggerer": "triggerer"}[service]
            status = (report.get(key) or {}).get("status")
            return status == "healthy", f"{key} {status} (heartbeat {(report.get(key) or {}).get('latest_' + key + '_heartbeat')})"
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy yet"
            return False, f"{type(error).__name__}: {error}"

    def wait_healthy(self, service: str, timeout_s: float = 180, *, after_pid: int | None = None) -> None:
        """Wait until ``service`` is healthy (and, with ``after_pid``, runs as another process
        than that one); ``StackError`` with the tail of its log after ``timeout_s`` seconds."""
        deadline, detail = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline:
            pid = self.runtime(service).get("pid")
            if after_pid is None or (pid and pid != after_pid):
                ok, detail = self.health(service)
                if ok:
                    return
            time.sleep(1)
        raise StackError(f"{service} not healthy after {timeout_s:.0f} s ({detail}); last lines of "
                         f"{self.log(service)}:\n{tail(self.log(service))}")

    # lifecycle
    def supervisor_pid(self, service: str) -> int | None:
        """The pid of ``service``'s supervisor, or None unless that process runs and is this
        stack's: its command line is ``stack.py --dir <this folder> _supervise <service>``.
        ``run/<service>.json`` outlives its processes, and after a reboot (or pid reuse) the
        number it holds may name an unrelated process, which nothing here may signal."""
        pid = self.runtime(service).get("supervisor_pid")
        if not alive(pid):
            return None
        try:   # compared as bytes: a folder name that is not UTF-8 still matches itself
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        pairs = {tuple(argv[i:i + 2]) for i in range(len(argv) - 1)}
        mine = (b"--dir", os.fsencode(str(self.dir))) in pairs and (b"_supervise", os.fsencode(service)) in pairs
        return pid if mine else None

    def orphans(self, group: int) -> list:
        """The processes of process group ``group`` (a dead supervisor's pid) that are this
        stack's: their working folder is in the stack folder or their ``AIRFLOW_HOME`` is its
        ``airflow/`` (a supervisor's children inherit both). While any process is in the
        group, Linux does not reuse its number, so a group of that number with none of this
        stack's processes is someone else's and is left alone. psutil.Process list."""
        import psutil

        home, found = str(self.dir / "airflow"), []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) != group:
                    continue
                cwd = proc.cwd()
                if cwd == str(self.dir) or cwd.startswith(str(self.dir) + os.sep) or \
                        proc.environ().get("AIRFLOW_HOME") == home:
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found

    def service_pid(self, service: str) -> int | None:
        """The pid of the ``service`` process, or None unless it runs as a child of this
        stack's supervisor of it (:meth:`supervisor_pid`)."""
        import psutil

        pid, sup = self.runtime(service).get("pid"), self.supervisor_pid(service)
        try:
            return pid if sup and alive(pid) and psutil.Process(pid).ppid() == sup else None
        except psutil.Error:
            return None

    def start(self, service: str) -> None:
        """Start the service's supervisor (detached, own session), unless it runs already."""
        if self.supervisor_pid(service):
            return
        self.log(service).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log(service), "ab") as log:
            subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--dir", str(self.dir), "_supervise",
                              service], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                             env=self.env, cwd=str(self.dir))
        deadline = time.monotonic() + 30
        while not self.service_pid(service):
            if time.monotonic() > deadline:
                raise StackError(f"{service} did not start; see {self.log(service)}:\n{tail(self.log(service))}")
            time.sleep(0.2)

    def stop(self, service: str, timeout_s: float = 60) -> None:
        """Stop a service: SIGTERM to its supervisor, which stops the service with its stop
        signal and waits; then SIGKILL to whatever is left in its process group. Only a
        supervisor that is this stack's (:meth:`supervisor_pid`) is signalled; of a supervisor
        that died (``kill -9``), the processes it left in its group that are this stack's
        (:meth:`orphans`) are killed. The pids are then cleared from ``run/<service>.json``
        (its start and exit history kept)."""
        sup, recorded = self.supervisor_pid(service), self.runtime(service).get("supervisor_pid")
        if not sup and recorded and not alive(recorded):
            left = kill_all(self.orphans(recorded))
            if left:
                say(f"{service}: its supervisor was gone; killed {left} processes it left running")
        if sup:
            os.kill(sup, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while alive(sup) and time.monotonic() < deadline:
                time.sleep(0.2)
            try:
                os.killpg(sup, signal.SIGKILL)   # orphans in its group: LocalExecutor workers, task processes
            except (ProcessLookupError, PermissionError):
                pass
        rt = self.runtime(service)
        if rt.get("supervisor_pid") or rt.get("pid"):
            write_private(self.run / f"{service}.json", json.dumps({**rt, "supervisor_pid": None, "pid": None},
                                                                   indent=2))

    def kill(self, service: str, sig: int, *, tree: bool = False) -> int:
        """Send ``sig`` to the service process only (``tree``: and every process it started), as a
        crash would; its supervisor restarts it. Returns the pid signalled."""
        pid = self.service_pid(service)
        if not pid:
            raise StackError(f"{service} is not running")
        targets = [pid]
        if tree:
            import psutil

            targets += [p.pid for p in psutil.Process(pid).children(recursive=True)]
        for p in targets:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return pid

    def restart(self, service: str, timeout_s: float = 180) -> None:
        """Stop the service process with its clean stop signal; its supervisor starts it again;
        return once the new process is healthy."""
        pid = self.kill(service, STOP_SIGNAL.get(service, signal.SIGTERM))
        self.wait_healthy(service, timeout_s, after_pid=pid)


def shlex_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def alive(pid) -> bool:
    """Whether ``pid`` runs (a zombie, left by a parent that never reaps, does not count)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def http_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body.strip() else {}


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def api_token(stack: Stack) -> str:
    """A JWT for the REST API: POST /auth/token with the admin user and its password."""
    st = stack.state
    password = read_json(Path(st["admin_password_file"]))[st["admin_user"]]
    request = urllib.request.Request(f"{st['api_url']}/auth/token", method="POST",
                                     data=json.dumps({"username": st["admin_user"], "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


# --- the supervisor ------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Make this process the Linux child subreaper of its descendants (``prctl(2)``
    ``PR_SET_CHILD_SUBREAPER``): processes orphaned below it are re-parented to it instead of
    to init, so :func:`kill_leftovers` finds them. False where the call is unavailable."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0   # 36: PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def kill_all(procs: list) -> int:
    """SIGKILL each of ``procs`` (psutil.Process) and wait up to 10 s for them; returns how
    many there were."""
    import psutil

    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


def kill_leftovers() -> int:
    """SIGKILL every remaining descendant of this process (what an exited service left
    running) and wait up to 10 s for them; returns how many there were."""
    import psutil

    return kill_all(psutil.Process().children(recursive=True))


#: Liveness probes, as the Airflow Helm chart gives the scheduler: {service: (seconds after a
#: start before the first probe, seconds unhealthy before SIGKILL)}, probed every
#: :data:`PROBE_EVERY_S` with
#: :meth:`Stack.health`. Seen in CI: after PostgreSQL restarted, the scheduler logged the
#: database error and "Shutting down LocalExecutor", then hung instead of exiting, so the
#: restart-on-exit policy never fired and the night stalled for 20 min.
LIVENESS = {"scheduler": (120.0, 90.0)}
PROBE_EVERY_S = 10.0


def supervise(stack: Stack, service: str) -> int:
    """Run one service and restart it whenever it exits without being asked to (delay 2 s,
    doubling to 30 s while it keeps dying within a minute), or is killed by its liveness
    probe (:data:`LIVENESS`). Before a restart, and after a stop,
    every process the exited one left running is killed (:func:`kill_leftovers`), as a
    container's restart would. SIGTERM stops it: the service gets its stop signal, then SIGKILL
    after 45 s. Writes ``run/<service>.json``, ``leftovers_killed`` and ``liveness_kills`` included."""
    argv, user = stack.command(service)
    become_subreaper()
    stopping, child = False, None
    record = {"service": service, "supervisor_pid": os.getpid(), "pid": None, "starts": 0, "exits": [],
              "liveness_kills": 0}
    grace_s, window_s = LIVENESS.get(service, (None, None))

    def save():
        write_private(stack.run / f"{service}.json", json.dumps(record, indent=2))

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.send_signal(STOP_SIGNAL.get(service, signal.SIGTERM))

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    delay = 2.0
    while not stopping:
        say(f"starting {service}: {' '.join(argv)}" + (f" (as {user})" if user else ""))
        started = time.monotonic()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, user=user, cwd=str(stack.dir))
        record.update(pid=child.pid, starts=record["starts"] + 1, started_at=time.time())
        save()
        stop_deadline, unhealthy_since = None, None
        next_probe = started + grace_s if grace_s is not None else None
        while (rc := child.poll()) is None:
            time.sleep(0.5)
            if stopping:
                stop_deadline = stop_deadline or time.monotonic() + 45
                if time.monotonic() > stop_deadline:
                    say(f"{service} did not stop within 45 s: SIGKILL")
                    child.kill()
            elif next_probe is not None and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_EVERY_S
                ok, detail = stack.health(service)
                unhealthy_since = None if ok else (unhealthy_since or time.monotonic())
                if unhealthy_since is not None and time.monotonic() - unhealthy_since >= window_s:
                    say(f"{service} unhealthy for {window_s:.0f} s ({detail}): SIGKILL (liveness probe)")
                    record["liveness_kills"] += 1
                    child.kill()
                    next_probe = None
        leftovers = kill_leftovers()
        record["exits"].append({"rc": rc, "at": time.time(), "requested": stopping, "leftovers_killed": leftovers})
        record["exits"] = record["exits"][-20:]
        save()
        if leftovers:
            say(f"{service}: killed {leftovers} processes the exited one left running")
        if stopping:
            say(f"{service} stopped (exit {rc})")
            break
        delay = 2.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
        say(f"{service} exited with {rc} without being asked to: restarting in {delay:.0f} s "
            f"(start #{record['starts'] + 1})")
        time.sleep(delay)
    return 0


def say(message: str) -> None:
    print(f"[stack {time.strftime('%Y-%m-%d %H:%M:%S')}] {message}", flush=True)


# --- commands ------------------------------------------------------------------------------


def init_postgres(stack: Stack) -> None:
    """``initdb`` into ``pg/data`` on first start (owner ``airflow`` with a password, scram
    over TCP), as the user PostgreSQL runs as."""
    pg = stack.dir / "pg"
    data = pg / "data"
    user = stack.state["pg_user"]
    pg.mkdir(exist_ok=True)
    if user:
        shutil.chown(pg, user, user)
        if subprocess.run(["test", "-w", str(pg)], user=user).returncode:
            raise StackError(f"the user {user} cannot reach {pg}: every folder above the stack folder must be "
                             "traversable by others (chmod o+x), or choose another --dir, e.g. under /tmp "
                             "(`make stack-up STACK_DIR=/tmp/stack` or `MINING_STACK_DIR=/tmp/stack`)")
    if (data / "PG_VERSION").exists():
        return
    secret = read_json(stack.dir / "secrets.json")
    pwfile = pg / ".pwfile"
    pwfile.write_text(secret["db_password"] + "\n")
    if user:
        shutil.chown(pwfile, user, user)
    try:
        proc = subprocess.run([f"{stack.state['pg_bin']}/initdb", "-D", str(data), "-U", "airflow",
                               f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                               "-E", "UTF8", "--locale=C.UTF-8"], user=user, capture_output=True, text=True)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(stack.log("postgres"), "a") as log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode:
        raise StackError(f"initdb failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def create_database(stack: Stack) -> None:
    import psycopg2

    secret = read_json(stack.dir / "secrets.json")
    conn = psycopg2.connect(host="127.0.0.1", port=stack.state["ports"]["postgres"], user="airflow",
                            password=secret["db_password"], dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
        if not cur.fetchone():
            cur.execute("CREATE DATABASE airflow")
    conn.close()


def migrate(stack: Stack) -> None:
    with open(stack.log("airflow-db-migrate"), "ab") as log:
        proc = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=stack.env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=600, cwd=str(stack.dir))
    if proc.returncode:
        raise StackError(f"airflow db migrate failed (exit {proc.returncode}); see "
                         f"{stack.log('airflow-db-migrate')}:\n{tail(stack.log('airflow-db-migrate'))}")


def wait_dags(stack: Stack, timeout_s: float = 240) -> list[str]:
    """Wait until the DAG processor has parsed the DAG folder; ``StackError`` naming the
    import errors when it parsed files that failed."""
    deadline, seen = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        try:
            token = api_token(stack)
            get = lambda path: json.loads(urllib.request.urlopen(urllib.request.Request(  # noqa: E731
                stack.state["api_url"] + path, headers={"Authorization": f"Bearer {token}"}), timeout=10).read())
            errors = get("/api/v2/importErrors")
            if errors.get("total_entries"):
                raise StackError("DAG import errors:\n" + "\n".join(
                    f"{e['filename']}: {e['stack_trace'][-1500:]}" for e in errors["import_errors"]))
            seen = sorted(d["dag_id"] for d in get("/api/v2/dags?limit=100")["dags"])
            if {"mining_nightly", "mining_adhoc"} <= set(seen):
                return seen
        except (urllib.error.URLError, OSError, KeyError, json.JSONDecodeError):
            pass
        time.sleep(2)
    raise StackError(f"DAGs not parsed after {timeout_s:.0f} s (seen {seen}); see "
                     f"{stack.log('dag-processor')}:\n{tail(stack.log('dag-processor'))}")


def cmd_up(stack: Stack, args) -> int:
    if any(stack.supervisor_pid(s) for s in SERVICES):
        raise StackError(f"a stack already runs in {stack.dir}: `stack.py --dir {stack.dir} down` first")
    t0 = time.monotonic()
    stack.dir.mkdir(parents=True, exist_ok=True)
    stack.configure(args.worker_cores, args.worker_memory, args.parallelism)
    try:
        init_postgres(stack)
        stack.start("postgres")
        stack.wait_healthy("postgres", 60)
        create_database(stack)
        say(f"postgres healthy on 127.0.0.1:{stack.state['ports']['postgres']}; airflow db migrate ...")
        migrate(stack)
        for service in SERVICES[1:]:
            stack.start(service)
        for service in SERVICES[1:]:
            stack.wait_healthy(service, args.timeout)
            say(f"{service} healthy ({stack.health(service)[1]})")
        dags = wait_dags(stack, args.timeout)
    except BaseException:
        say("start-up failed: stopping what was started")
        cmd_down(stack, args)
        raise
    st = stack.state
    say(f"stack up in {time.monotonic() - t0:.0f} s: DAGs {dags}")
    print(json.dumps({"dir": str(stack.dir), "api_url": st["api_url"], "spark_master": st["spark_master"],
                      "spark_master_ui": st["spark_master_ui"], "admin_user": st["admin_user"],
                      "admin_password_file": st["admin_password_file"], "env": str(stack.dir / "env.sh"),
                      "logs": str(stack.logs)}, indent=2))
    return 0


def cmd_down(stack: Stack, args) -> int:
    for service in reversed(SERVICES):
        if stack.runtime(service):
            stack.stop(service)
            say(f"{service} stopped")
    return 0


def cmd_status(stack: Stack, args) -> int:
    report = {}
    for service in SERVICES:
        rt = stack.runtime(service)
        ok, detail = stack.health(service) if stack.state else (False, "no stack")
        report[service] = {"pid": rt.get("pid"), "healthy": ok, "detail": detail, "starts": rt.get("starts", 0),
                           "log": str(stack.log(service))}
    print(json.dumps(report, indent=2))
    return 0 if all(r["healthy"] for r in report.values()) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="stack folder (default $MINING_STACK_DIR or stack/run)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service and wait until each is healthy and the DAGs are parsed")
    up.add_argument("--worker-cores", type=int, default=2, help="cores each Spark worker offers (default 2)")
    up.add_argument("--worker-memory", default="4g", help="memory each Spark worker offers (default 4g)")
    up.add_argument("--parallelism", type=int, default=4, help="LocalExecutor task slots (default 4)")
    up.add_argument("--timeout", type=float, default=240, help="seconds each service may take to be healthy")
    sub.add_parser("down", help="stop every service (the folder, database and logs are kept)")
    sub.add_parser("status", help="pid, health and start count of every service (exit 1 when one is unhealthy)")
    for name, what in (("start", "start one service"), ("stop", "stop one service"),
                       ("restart", "stop one service cleanly; wait until it is healthy again")):
        p = sub.add_parser(name, help=what)
        p.add_argument("service", choices=SERVICES)
    kill = sub.add_parser("kill", help="signal one service process, as a crash would (its supervisor restarts it)")
    kill.add_argument("service", choices=SERVICES)
    kill.add_argument("--signal", default="KILL", help="signal name (default KILL)")
    kill.add_argument("--tree", action="store_true", help="also every process the service started")
    sup = sub.add_parser("_supervise")
    sup.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)
    stack = Stack(args.dir or default_dir())
    try:
        if args.command == "up":
            return cmd_up(stack, args)
        if args.command == "down":
            return cmd_down(stack, args)
        if args.command == "status":
            return cmd_status(stack, args)
        if args.command == "_supervise":
            return supervise(stack, args.service)
        if args.command == "start":
            stack.start(args.service)
            stack.wait_healthy(args.service)
        elif args.command == "stop":
            stack.stop(args.service)
        elif args.command == "restart":
            stack.restart(args.service)
        elif args.command == "kill":
            pid = stack.kill(args.service, getattr(signal, "SIG" + args.signal.upper().removeprefix("SIG")),
                             tree=args.tree)
            print(json.dumps({"service": args.service, "pid": pid, "signal": args.signal}))
        return 0
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
