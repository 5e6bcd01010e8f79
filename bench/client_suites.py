"""Run AMQP client libraries' own integration test suites against Jackalope (and a reference).

Run from the repository root::

    .venv/bin/python bench/client_suites.py --download /tmp/suites --python /tmp/suites/venv/bin/python \\
        --reference amqp://guest:guest@127.0.0.1:5682/ [--only aiormq,kombu] [--timeout 60]

    .venv/bin/python bench/client_suites.py --suite aiormq=/tmp/suites/aiormq-7.2.4 ... -- -k confirm

A developer's tool, not part of the test suite. The suites are aiormq, aio-pika, py-amqp
(``amqp``), kombu and Celery, each taken from its sdist at the version installed for
``--python`` (``--download DIR``: ``pip download --no-binary <dist>`` into DIR and unpacked
there, or reused if already unpacked) or from ``--suite NAME=PATH`` (an unpacked sdist or a
checkout). ``--python`` is the interpreter that runs the suites: it must have the library,
pytest, pytest-timeout and the suite's own test dependencies (aiomisc, aiomisc-pytest and
shortuuid for aiormq and aio-pika; redis, pydantic and cryptography for Celery's). A separate
venv keeps those plugins out of Jackalope's own environment.

Each suite is copied to a scratch directory and its broker fixtures are pointed at the broker
under test (the upstream ones start a docker container). Tests that need what neither broker
offers here (a TLS listener, docker, a Redis, memcached or database result backend) are
marked skipped with the reason, and modules that need a missing library are not collected.
Celery's result backend is ``rpc://``, over the broker under test, unless ``TEST_BACKEND``
names another (``redis://``... then its chord tests run too).

Each suite runs once against a Jackalope started in this process on ephemeral ports (a fresh
data directory per suite) and, with ``--reference``, once against the reference broker, one
suite at a time, with ``-p no:randomly`` and a per-test timeout. A small plugin records each
test's outcome (passed / failed / skipped; a failure or error in any phase counts as failed;
xfail as skipped, xpass as passed). The tests that passed on the reference only are run once
more on both brokers (``--no-recheck`` to skip): those that then pass on both, or fail on both,
are listed apart as unsteady (timing-sensitive client tests). The report gives the counts per
suite per broker, the skip reasons, and the tests that pass on the reference but fail on
Jackalope; ``--json PATH`` writes every outcome, and each run's pytest output is kept in the
scratch directory (``<scratch>/<suite>.<broker>[.again].log``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from amqp_load.wire import AmqpUrl
from jackalope import Broker

PLUGIN_NAME = "_client_suites_plugin"

# Loaded into every suite's pytest run: applies the skip rules and records outcomes as JSON lines.
PLUGIN_SOURCE = """
import json
import os
import re

import pytest

_RULES = [(re.compile(p), r) for p, r in json.loads(os.environ.get("CLIENT_SUITES_SKIPS", "[]"))]
_OUT = os.environ["CLIENT_SUITES_OUTCOMES"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        for pattern, reason in _RULES:
            if pattern.search(item.nodeid):
                item.add_marker(pytest.mark.skip(reason=reason))
                break


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if hasattr(report, "wasxfail"):
            outcome = "passed" if report.outcome == "passed" else "skipped"
        else:
            outcome = report.outcome
        entry = {"nodeid": report.nodeid, "when": report.when, "outcome": outcome}
        if report.skipped and isinstance(report.longrepr, tuple):
            entry["reason"] = (str(report.longrepr[2]).removeprefix("Skipped: ").splitlines() or [""])[0]
        with open(_OUT, "a") as f:
            f.write(json.dumps(entry) + "\\n")
"""


def broker_env(url: AmqpUrl) -> dict[str, str]:
    """Every variable some suite reads for its broker (py-amqp and kombu: host and port only)."""
    vhost = "" if url.vhost == "/" else url.vhost
    return {
        "CLIENT_SUITES_HOST": url.host,
        "CLIENT_SUITES_PORT": str(url.port),
        "CLIENT_SUITES_USER": url.user,
        "CLIENT_SUITES_PASSWORD": url.password,
        "CLIENT_SUITES_VHOST": url.vhost,
        "AMQP_URL": f"amqp://{url.user}:{url.password}@{url.host}:{url.port}/{vhost}",
        "RABBITMQ_HOST": url.host,
        "RABBITMQ_5672_TCP": str(url.port),
        "TEST_BROKER": f"pyamqp://{url.user}:{url.password}@{url.host}:{url.port}/{vhost}",
    }


# Fixtures appended to aiormq's and aio-pika's conftest: the upstream ones start a docker container.
_AIO_FIXTURES = """

# --- bench/client_suites.py: the broker under test instead of a docker container ---
import os as _cs_os
import types as _cs_types

import pytest as _cs_pytest
from yarl import URL as _CS_URL


@_cs_pytest.fixture(scope="session")
def rabbitmq_container():
    return _cs_types.SimpleNamespace(
        id="client-suites",
        host=_cs_os.environ["CLIENT_SUITES_HOST"],
        # amqp_url builds its amqps variants eagerly; those tests are skipped (no TLS listener)
        ports={p: int(_cs_os.environ["CLIENT_SUITES_PORT"]) for p in ("5672/tcp", "5671/tcp")},
    )


@_cs_pytest.fixture(scope="session")
def amqp_direct_url():
    return _CS_URL.build(
        scheme="amqp",
        user=_cs_os.environ["CLIENT_SUITES_USER"],
        password=_cs_os.environ["CLIENT_SUITES_PASSWORD"],
        host=_cs_os.environ["CLIENT_SUITES_HOST"],
        port=int(_cs_os.environ["CLIENT_SUITES_PORT"]),
        path="/" + _cs_os.environ["CLIENT_SUITES_VHOST"],
    )
"""

_NO_DOCKER_CHECK = """

def pytest_configure(config):  # bench/client_suites.py: no docker needed
    pass
"""

TLS = "needs a TLS listener (the upstream docker image's)"


@dataclass(frozen=True)
class Suite:
    name: str
    dist: str  # the distribution on PyPI
    paths: tuple[str, ...]  # test paths inside the unpacked sdist
    overlays: dict[str, str] = field(default_factory=dict)  # file -> text appended to it
    skips: tuple[tuple[str, str], ...] = ()  # (node id regex, reason)
    ignores: tuple[tuple[str, str], ...] = ()  # (test module not even collected, reason)
    pytest_args: tuple[str, ...] = ()


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "aiormq",
            "aiormq",
            ("tests",),
            {"tests/conftest.py": _AIO_FIXTURES},
            (
                (r"\[(.*-)?amqps", TLS),
                (r"test_auth_external|test_ssl_verification|test_ssl_context\[|test_ssl_context$", TLS),
            ),
        ),
        Suite(
            "aio-pika",
            "aio-pika",
            ("tests",),
            {"tests/conftest.py": _AIO_FIXTURES + _NO_DOCKER_CHECK},
            (
                (r"test_amqps\.py", TLS),
                (r"test_robust_recovery\.py", "starts its own RabbitMQ containers (docker)"),
            ),
        ),
        Suite(
            "py-amqp",
            "amqp",
            ("t/integration/test_rmq.py",),  # test_integration.py drives mocks, not a broker
            skips=((r"\[tls[\]-]|test_tls_", TLS),),
        ),
        Suite("kombu", "kombu", ("t/integration/test_py_amqp.py",)),
        Suite(
            "celery",
            "celery",
            ("t/integration",),
            ignores=(
                ("t/integration/test_backend.py", "Azure Block Blob result backend"),
                ("t/integration/test_database_backend.py", "SQLAlchemy result backend"),
            ),
            pytest_args=("-p", "celery.contrib.pytest"),  # its markers (upstream's tox passes it too)
            skips=(
                (r"test_redis_backend\.py|test_request_backend_down\.py", "needs a Redis result backend"),
                (r"test_cache_backend\.py", "needs a memcached result backend"),
                (r"test_database_backend\.py", "needs a database result backend"),
            ),
        ),
    )
}


@dataclass
class RunResult:
    outcomes: dict[str, str]  # node id -> passed / failed / skipped
    skip_reasons: dict[str, str]  # node id -> why it was skipped
    returncode: int
    log: Path

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


def installed_version(python: str, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def download(python: str, suite: Suite, into: Path) -> Path:
    """The sdist of the installed version, downloaded and unpacked into ``into`` (reused if there)."""
    version = installed_version(python, suite.dist)
    stem = f"{suite.dist.replace('-', '_')}-{version}"
    for name in (stem, f"{suite.dist}-{version}"):
        if (into / name).is_dir():
            return into / name
    into.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", suite.dist]
    subprocess.run([*cmd, "-d", str(into), f"{suite.dist}=={version}"], check=True)
    for name in (stem, f"{suite.dist}-{version}"):
        archive = into / f"{name}.tar.gz"
        if archive.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")
            return into / name
    raise SystemExit(f"{suite.dist} {version}: no sdist found in {into}")


def prepare(suite: Suite, source: Path, scratch: Path) -> Path:
    """A copy of the unpacked suite with its overlays applied and the recording plugin beside it."""
    work = scratch / suite.name
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for rel, text in suite.overlays.items():
        with (work / rel).open("a") as f:
            f.write(text)
    (scratch / "plugin").mkdir(exist_ok=True)
    (scratch / "plugin" / f"{PLUGIN_NAME}.py").write_text(PLUGIN_SOURCE)
    return work


def run_suite(
    python: str, suite: Suite, work: Path, url: AmqpUrl, label: str, timeout: int, extra: list[str]
) -> RunResult:
    """One pytest run of ``extra`` (or the suite's paths when it names no test) in the suite's copy."""
    scratch = work.parent
    outcomes_file = scratch / f"{suite.name}.{label}.jsonl"
    log = scratch / f"{suite.name}.{label}.log"
    outcomes_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(broker_env(url))
    env.setdefault("TEST_BACKEND", "rpc://")  # Celery's result backend: over AMQP unless told
    env["CLIENT_SUITES_SKIPS"] = json.dumps(suite.skips)
    env["CLIENT_SUITES_OUTCOMES"] = str(outcomes_file)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(scratch / "plugin"), env.get("PYTHONPATH")) if p)
    env.pop("PYTEST_ADDOPTS", None)
    targets = [] if any("::" in a for a in extra) else list(suite.paths)
    cmd = [python, "-m", "pytest", *targets, "-p", PLUGIN_NAME]
    for plugin in ("randomly", "cacheprovider", "xdist", "rerunfailures"):
        cmd += ["-p", f"no:{plugin}"]
    cmd += [f"--timeout={timeout}", "-rfE", "-q", *suite.pytest_args, *extra]
    cmd += [f"--ignore={path}" for path, _ in suite.ignores]
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    return RunResult(*read_outcomes(outcomes_file), proc.returncode, log)


def read_outcomes(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    if not path.exists():
        return outcomes, reasons
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        nodeid, outcome = entry["nodeid"], entry["outcome"]
        previous = outcomes.get(nodeid)
        if previous == "failed" or (previous == "skipped" and outcome == "passed"):
            continue  # a failure in any phase sticks; a skip at setup is not undone by teardown
        outcomes[nodeid] = outcome
        if "reason" in entry:
            reasons[nodeid] = entry["reason"]
    return outcomes, reasons


@contextmanager
def jackalope(data_dir: Path) -> Iterator[AmqpUrl]:
    broker = Broker(data_dir=data_dir, kafka_port=-1)
    broker.start()
    try:
        yield AmqpUrl.parse(broker.amqp_url)
    finally:
        broker.stop()


def differences(runs: dict[str, RunResult]) -> list[str]:
    """Tests that passed on the reference and did not pass on Jackalope."""
    ref, jack = runs["reference"].outcomes, runs["jackalope"].outcomes
    return sorted(n for n, o in ref.items() if o == "passed" and jack.get(n) != "passed")


def report(results: dict[str, dict[str, RunResult]], rechecks: dict[str, dict[str, RunResult]]) -> str:
    brokers = [b for b in ("jackalope", "reference") if any(b in r for r in results.values())]
    header = f"{'suite':<10}" + "".join(f"{b + ' pass/fail/skip':>28}" for b in brokers)
    lines = [header, "-" * len(header)]
    for name, runs in results.items():
        row = f"{name:<10}"
        for b in brokers:
            c = runs[b].counts()
            row += f"{c['passed']:>18}/{c['failed']:>4}/{c['skipped']:>4}"
        lines.append(row)
    for name, runs in results.items():
        for path, reason in SUITES[name].ignores:
            lines.append(f"{name}: not run: {path} ({reason})")
        for broker, result in runs.items():
            if result.returncode not in (0, 1):  # 1: some tests failed; else pytest itself did
                lines.append(f"{name} on {broker}: pytest exited {result.returncode}, see {result.log}")
        run = runs["jackalope"]
        why = Counter(run.skip_reasons.get(n, "?") for n, o in run.outcomes.items() if o == "skipped")
        if why:
            lines.append(
                f"{name} skipped on Jackalope: " + "; ".join(f"{k} ({v})" for k, v in why.most_common())
            )
    if "reference" not in brokers:
        return "\n".join(lines)
    for name, runs in results.items():
        diff = differences(runs)
        again = rechecks.get(name, {})
        confirmed = [n for n in diff if not again or n in differences(again)]
        flaky = [n for n in diff if n not in confirmed]
        lines += ["", f"{name}: {len(confirmed)} pass on the reference, not on Jackalope"]
        lines += [f"  {n}  ({runs['jackalope'].outcomes.get(n, 'not run')})" for n in confirmed]
        if flaky:
            lines.append(f"{name}: {len(flaky)} more did so once, not when run again (unsteady)")
            lines += [f"  {n}" for n in flaky]
    return "\n".join(lines)


def run_both(
    python: str,
    suite: Suite,
    work: Path,
    reference: AmqpUrl | None,
    tag: str,
    timeout: int,
    args: list[str],
) -> dict[str, RunResult]:
    """The suite (or the tests named in ``args``) on a fresh Jackalope, then on the reference."""
    runs: dict[str, RunResult] = {}
    data_dir = work.parent / f"{suite.name}.jdata"
    shutil.rmtree(data_dir, ignore_errors=True)
    with jackalope(data_dir) as url:
        print(f"{suite.name}: running against Jackalope at {url.host}:{url.port}", flush=True)
        runs["jackalope"] = run_suite(python, suite, work, url, "jackalope" + tag, timeout, args)
    shutil.rmtree(data_dir, ignore_errors=True)
    if reference is not None:
        print(f"{suite.name}: running against the reference", flush=True)
        runs["reference"] = run_suite(python, suite, work, reference, "reference" + tag, timeout, args)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", action="append", default=[], metavar="NAME=PATH", help="unpacked suite")
    parser.add_argument("--download", type=Path, metavar="DIR", help="pip download the sdists into DIR")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs the suites")
    parser.add_argument("--reference", metavar="URL", help="reference broker, e.g. RabbitMQ")
    parser.add_argument("--only", help="comma-separated suite names (default: every one)")
    parser.add_argument("--timeout", type=int, default=60, help="per-test timeout, seconds (60)")
    parser.add_argument("--scratch", type=Path, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument(
        "--no-recheck",
        dest="recheck",
        action="store_false",
        help="do not run the tests that passed on the reference only once more on both brokers",
    )
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()

    sources: dict[str, Path] = {}
    for spec in args.suite:
        name, _, path = spec.partition("=")
        if name not in SUITES or not path:
            parser.error(f"--suite {spec}: expected NAME=PATH with NAME one of {', '.join(SUITES)}")
        sources[name] = Path(path)
    names = args.only.split(",") if args.only else list(sources or SUITES)
    for name in names:
        if name not in SUITES:
            parser.error(f"unknown suite {name}; known: {', '.join(SUITES)}")
        if name not in sources:
            if args.download is None:
                parser.error(f"{name}: give --suite {name}=PATH or --download DIR")
            sources[name] = download(args.python, SUITES[name], args.download)

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="client-suites-"))
    scratch.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=scratch / "jackalope.log", level=logging.INFO)
    reference = AmqpUrl.parse(args.reference) if args.reference else None
    results: dict[str, dict[str, RunResult]] = {}
    rechecks: dict[str, dict[str, RunResult]] = {}
    for name in names:
        suite = SUITES[name]
        work = prepare(suite, sources[name], scratch)
        results[name] = run_both(args.python, suite, work, reference, "", args.timeout, args.pytest_args)
        diff = differences(results[name]) if reference is not None else []
        if diff and args.recheck:
            print(f"{name}: running {len(diff)} tests again on both brokers", flush=True)
            rechecks[name] = run_both(args.python, suite, work, reference, ".again", args.timeout, diff)
    print()
    print(report(results, rechecks))
    print(f"\npytest output: {scratch}/<suite>.<broker>.log")
    if args.json:
        data = {n: {b: r.outcomes for b, r in runs.items()} for n, runs in results.items()}
        data.update({n + ".again": {b: r.outcomes for b, r in runs.items()} for n, runs in rechecks.items()})
        args.json.write_text(json.dumps(data, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
