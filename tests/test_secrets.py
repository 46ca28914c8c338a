"""Security hygiene: no secrets or credentials in the repository, and docker-compose.yml
takes every secret from the environment.

The repository scan uses Yelp's ``detect-secrets`` (its default plugins: AWS/GCP/Azure/
GitHub/Slack/Stripe/... token formats, private keys, JWTs, basic-auth URLs, keyword
assignments such as ``password = "..."``, high-entropy base64/hex strings) on every file
git tracks or would track (``git ls-files --cached --others --exclude-standard``), except
the vendored public corpora under ``mining/sim/data/`` (1.6 MB of third-party utterances; the
entropy scan of them alone takes ~20 s and finds nothing).

Allowlist: :data:`ALLOWLIST` below (detect-secrets' ``hashed_secret``, the SHA-1 of the
string, with the reason; anything else found fails the test). Public on purpose and not
flagged by detect-secrets: ``mining.privacy.pii.DEMO_KEY`` (the demo key, refused outside demo
mode; :func:`test_the_only_literal_key_is_the_public_demo_key`) and the empty
placeholders of ``.env.example`` (:func:`test_env_example_leaves_every_secret_empty`).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: (file, detect-secrets hashed_secret) → why it is not a secret.
ALLOWLIST = {
    ("tests/core/test_text.py", "aabc6baa2329644dd4c24ce57ddde468ff64ce8e"):  # pragma: allowlist secret
        "SHA-256 test vector of 'abc' (FIPS 180-2), the expected value of text_hash",
}
EXCLUDED_DIRS = ("mining/sim/data/",)
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|FERNET|(^|_)KEY$|PRIVATE_KEY|API_KEY",
                         re.IGNORECASE)
_INTERP = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return [f for f in out if (REPO / f).is_file() and not f.startswith(EXCLUDED_DIRS)]


def test_detect_secrets_finds_nothing_outside_the_allowlist(monkeypatch):
    pytest.importorskip("detect_secrets", reason="detect-secrets is in the dev extra")
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    monkeypatch.chdir(REPO)
    files = _repo_files()
    assert len(files) > 50
    secrets = SecretsCollection()
    with default_settings():
        for f in files:
            secrets.scan_file(f)
    found = {(f, s["hashed_secret"]): f"{s['type']} at line {s['line_number']}"
             for f, items in secrets.json().items() for s in items}
    unexpected = {k: v for k, v in found.items() if k not in ALLOWLIST}
    assert not unexpected, unexpected


def test_no_env_file_or_key_file_is_tracked():
    files = _repo_files()
    assert ".env.example" in files
    bad = [f for f in files if Path(f).name == ".env" or Path(f).suffix in (".pem", ".key", ".p12", ".pfx", ".jks")
           or Path(f).name.startswith("id_rsa") or Path(f).name.endswith(".keytab")]
    assert not bad, bad


def test_the_only_literal_key_is_the_public_demo_key():
    """``mining.privacy.pii.DEMO_KEY`` is public by design (a run refuses it unless
    MINING_DEMO_MODE=1) and says so; no other file copies it (config, compose, scripts)."""
    from mining.privacy import pii as privacy
    key = privacy.DEMO_KEY.decode()
    assert "public-not-secret" in key
    holders = [f for f in _repo_files() if key in (REPO / f).read_text(errors="replace")]
    assert holders == ["mining/privacy/pii.py"], holders


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def test_env_example_leaves_every_secret_empty():
    pairs = _env_example()
    secret_names = [n for n in pairs if SECRET_NAME.search(n)]
    assert {"MINING_PSEUDONYM_KEY", "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET"} <= set(secret_names)
    filled = {n: pairs[n] for n in secret_names if pairs[n]}
    assert not filled, filled


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))
    else:
        yield path, node


def _compose() -> dict:
    import yaml

    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_takes_secrets_only_from_the_environment():
    """Every secret-named variable of every service is one ``${VAR}`` interpolation of a
    secret-named variable, required (``:?``) or defaulting to empty; URLs carry no literal
    password; no secret-named variable of the whole file has a non-empty default."""
    compose = _compose()
    problems = []
    checked = 0
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for var, value in env.items():
            if not SECRET_NAME.search(var):
                continue
            checked += 1
            m = _INTERP.fullmatch(str(value or ""))
            if not m or not SECRET_NAME.search(m["var"]) or (m["op"] in (":-", "-") and m["arg"]):
                problems.append(f"{name}.environment.{var} = {value!r}")
    for path, value in _walk(compose):
        if not isinstance(value, str):
            continue
        for url in re.finditer(r"://[^/\s:@]+:(?P<pw>[^@\s]+)@", value):
            if not _INTERP.fullmatch(url["pw"]):
                problems.append(f"{'.'.join(path)}: literal password in URL")
        for m in _INTERP.finditer(value):
            if SECRET_NAME.search(m["var"]) and m["op"] in (":-", "-") and m["arg"]:
                problems.append(f"{'.'.join(path)}: ${{{m['var']}}} defaults to a literal")
    assert checked >= 5
    assert not problems, problems


def test_compose_secret_variables_are_documented_in_env_example():
    text = (REPO / "docker-compose.yml").read_text()
    used = {m["var"] for m in _INTERP.finditer(text) if SECRET_NAME.search(m["var"])}
    assert used and used <= set(_env_example()), used - set(_env_example())
