"""Run the Kafka client libraries' own integration suites against `jackalope serve`.

    python -m tests.peer.run_client_suites --kafka-python SRC --aiokafka SRC \
        --confluent-kafka SRC --librdkafka SRC [--only NAME] [--timeout S] [--work DIR] \
        [-k EXPR] [--test ID ...] [--kafka-version V] [--no-quick] [--baseline PATH]

Each source directory is the library's source tree (see tests/peer/README.md for where to get
them); a suite whose source is not given is left out.  Each suite gets its own brokers
(brokers.py), a copy of its test tree with our overlay (overlays/), a timeout, and a JUnit or
JSON report; the runner prints a table of passed/failed/skipped per suite and writes
``results.json`` (every test's outcome and first line of its message) into the work directory.
Not part of Jackalope's own test suite: it needs sources fetched by hand and takes a long time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.peer.brokers import GUEST_AUTH, Brokers, start_brokers

HERE = Path(__file__).resolve().parent
OVERLAYS = HERE / "overlays"
# Plugins of this environment that the suites do not expect (ours included).
PYTEST_PLUGINS_OFF = ("-p", "no:jackalope", "-p", "no:cacheprovider", "-p", "no:benchmark")


@dataclass
class Outcome:
    suite: str
    counts: dict[str, int] = field(default_factory=dict)
    tests: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (outcome, message)
    note: str = ""


@dataclass(frozen=True)
class Selection:
    """Which tests of a suite run, and the broker version the suite is told it talks to.

    ``keyword`` is pytest's ``-k`` expression (pytest suites); ``tests`` are pytest node ids or
    paths relative to the suite's tree (they replace its default targets), or librdkafka test
    numbers (its ``TESTS``); ``kafka_version`` overrides the suite's default version variable
    (kafka-python ``KAFKA_VERSION``, aiokafka ``AIOKAFKA_KAFKA_VERSION``, librdkafka
    ``TEST_KAFKA_VERSION``).  In quick mode librdkafka runs only the subtests marked quick
    (``SUB_TEST_QUICK``): a test made of ``SUB_TEST``s passes without doing anything.
    """

    keyword: str | None = None
    tests: tuple[str, ...] = ()
    kafka_version: str | None = None
    quick: bool | None = None  # librdkafka's quick mode (-Q); None: the suite's default

    def pytest_targets(self, default: list[str]) -> list[str]:
        return list(self.tests) or default

    def pytest_extra(self) -> list[str]:
        return ["-k", self.keyword] if self.keyword else []

    def version(self, variable: str, default: str) -> str:
        return self.kafka_version or os.environ.get(variable, default)


ALL = Selection()


@dataclass
class Plan:
    """How to run one suite: the command, its directory, its environment, its report."""

    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    report: Path
    parse: Callable[[Path], dict[str, tuple[str, str]]]
    broker_args: tuple[str, ...] = ()
    configure: Callable[[Brokers, Path], None] | None = None  # writes config files naming the brokers


def _pytest(work: Path, targets: list[str], extra: list[str]) -> list[str]:
    report = work / "junit.xml"
    return [
        "nice",
        "-n",
        "10",
        sys.executable,
        "-m",
        "pytest",
        *PYTEST_PLUGINS_OFF,
        "-c",
        str(work / "pytest.ini"),
        "--rootdir",
        str(work),
        f"--junitxml={report}",
        "-q",
        "-rN",
        "--timeout=180",
        "--continue-on-collection-errors",
        *extra,
        *targets,
    ]


def broker_has_setting(name: str) -> bool:
    """Whether the broker the suites run (the ``jackalope`` on this interpreter's path, i.e.
    the checkout whose ``src`` is on PYTHONPATH) has the setting ``name``: flags for settings
    that only some branches have are passed only to the brokers that know them."""
    from jackalope.settings import Settings

    return name in {f.name for f in dataclasses.fields(Settings)}


def _put_user(http: str, name: str, password: str, *, tags: str) -> None:
    """Create or replace a user of a broker (HTTP API, as brokers.py makes them)."""
    request = urllib.request.Request(
        f"{http}/api/users/{name}",
        data=json.dumps({"password": password, "tags": tags}).encode(),
        method="PUT",
        headers={"Authorization": GUEST_AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _write_ini(work: Path, lines: list[str]) -> None:
    (work / "pytest.ini").write_text("[pytest]\n" + "\n".join(lines) + "\n")


def _overlay(conftest: Path, module: str, package: str) -> None:
    """Copy the overlay next to ``conftest`` and import it at the end of that conftest, so its
    fixtures and patches replace the suite's own (the last definition of a name wins)."""
    shutil.copy(OVERLAYS / f"{module}.py", conftest.parent / f"_jackalope_{module}.py")
    with conftest.open("a") as f:
        f.write(f"\nfrom {package}._jackalope_{module} import *  # noqa\n")


def plan_kafka_python(src: Path, work: Path, sel: Selection = ALL) -> Plan:
    shutil.copytree(src / "test", work / "test")
    _overlay(work / "test" / "integration" / "conftest.py", "kafka_python_overlay", "test.integration")
    _write_ini(work, ["log_level = WARNING"])
    # KafkaFixture wants a Kafka distribution's directory; an empty one: no JVM tools.
    (work / "no-kafka-bin").mkdir()
    env = {
        "KAFKA_VERSION": sel.version("PEER_KAFKA_VERSION", "4.2.0"),
        "KAFKA_ROOT": str(work / "no-kafka-bin"),
    }
    return Plan(
        _pytest(work, sel.pytest_targets(["test/integration"]), sel.pytest_extra()),
        work,
        env,
        work / "junit.xml",
        parse_junit,
        ("--kafka-num-partitions", "4"),
    )


def _uses_broker(path: Path) -> bool:
    text = path.read_text(errors="replace")
    return any(w in text for w in ("KafkaIntegrationTestCase", '"setup_test_class"', "kafka_server"))


def plan_aiokafka(src: Path, work: Path, sel: Selection = ALL) -> Plan:
    shutil.copytree(src / "tests", work / "tests")
    _overlay(work / "tests" / "conftest.py", "aiokafka_overlay", "tests")
    _write_ini(
        work,
        ["asyncio_mode = auto", "markers =", "    ssl: Tests that require SSL certificates to run"],
    )
    targets = sorted(
        str(p.relative_to(work))
        for p in (work / "tests").rglob("test_*.py")
        if _uses_broker(p) or _uses_broker_base(p, work)
    )
    env = {"AIOKAFKA_KAFKA_VERSION": sel.version("PEER_AIOKAFKA_KAFKA_VERSION", "2.8.1")}
    return Plan(
        _pytest(work, sel.pytest_targets(targets), sel.pytest_extra()),
        work,
        env,
        work / "junit.xml",
        parse_junit,
        ("--kafka-num-partitions", "2"),
    )


def _uses_broker_base(path: Path, work: Path) -> bool:
    # coordinator/ tests subclass KafkaIntegrationTestCase through imports of _testutil
    return "_testutil" in path.read_text(errors="replace") and "KafkaIntegrationTestCase" in path.read_text(
        errors="replace"
    )


def plan_confluent(src: Path, work: Path, sel: Selection = ALL, *, group_protocol: str = "classic") -> Plan:
    shutil.copytree(src / "tests", work / "tests")
    shutil.copytree(OVERLAYS / "trivup_stub", work / "stubs")
    _overlay(work / "tests" / "integration" / "conftest.py", "confluent_overlay", "tests.integration")
    oauth = work / "tests" / "integration" / "share_consumer_oauth" / "conftest.py"
    if oauth.exists():  # its own fixture overrides the integration conftest's: overlaid there
        _overlay(oauth, "confluent_oauth_overlay", "tests.integration.share_consumer_oauth")
    _write_ini(work, ["asyncio_mode = auto", "python_files = test_*"])
    # Schema Registry is a separate service, not a broker: its tests are not run.
    extra = ["--ignore=tests/integration/schema_registry", "--ignore-glob=tests/integration/*/java"]
    env = {"PYTHONPATH": str(work / "stubs"), "BROKERS": "set by run_suite"}
    if group_protocol == "consumer":
        # The suite's KIP-848 mode: every consumer test with group.protocol=consumer.
        env["TEST_CONSUMER_GROUP_PROTOCOL"] = "consumer"
        extra.append("--ignore-glob=tests/integration/share_consumer*")
    broker_args = ["--kafka-num-partitions", "1"]
    if broker_has_setting("kafka_share_record_lock_duration_ms"):
        # The suite's cluster (tests/common broker_conf): group.share.record.lock.duration.ms
        # and group.share.min.record.lock.duration.ms 1000, for its redelivery tests.
        broker_args += ["--kafka-share-record-lock-duration-ms", "1000"]
        if broker_has_setting("kafka_share_min_record_lock_duration_ms"):
            broker_args += ["--kafka-share-min-record-lock-duration-ms", "1000"]
    everyone = broker_has_setting("kafka_allow_everyone_if_no_acl_found")
    if everyone:
        # The suite's SASL cluster has an authorizer with allow.everyone.if.no.acl.found=true
        # and sasl_user is no super user (test_describe_operations): the same here.
        broker_args += ["--kafka-allow-everyone-if-no-acl-found", "true"]

    def configure(brokers: Brokers, work: Path) -> None:
        if everyone:
            _put_user(brokers.serves["sasl"].http, "sasl_user", "sasl_user", tags="")
        # A new Kafka 4.1+ cluster's controller writes the cluster-wide min.insync.replicas
        # (KIP-966) at start, which topics then show as a dynamic default
        # (test_incremental_alter_configs expects it): the same through a dynamic config.
        _cluster_default(brokers.serves["plain"].kafka, "min.insync.replicas", "1")

    return Plan(
        _pytest(work, sel.pytest_targets(["tests/integration"]), extra + sel.pytest_extra()),
        work,
        env,
        work / "junit.xml",
        parse_junit,
        tuple(broker_args),
        configure,
    )


def _cluster_default(bootstrap: str, name: str, value: str) -> None:
    """Set a cluster-wide dynamic broker config (the BROKER resource with the empty name)."""
    from tests.kafka_frontend.wire import WireClient, entity, request

    incremental_alter_configs, broker, set_op = 44, 4, 0
    config = entity(
        incremental_alter_configs, 1, "AlterableConfig", name=name, config_operation=set_op, value=value
    )
    resource = entity(
        incremental_alter_configs,
        1,
        "AlterConfigsResource",
        resource_type=broker,
        resource_name="",
        configs=(config,),
    )
    with WireClient(bootstrap) as client:
        response = client.call(
            request(incremental_alter_configs, 1, resources=(resource,), validate_only=False)
        )
    (result,) = response.responses
    if result.error_code:
        raise RuntimeError(f"setting {name}={value} cluster-wide: {result.error_code} {result.error_message}")


def plan_confluent_848(src: Path, work: Path, sel: Selection = ALL) -> Plan:
    return plan_confluent(src, work, sel, group_protocol="consumer")


def plan_librdkafka(
    src: Path, work: Path, sel: Selection = ALL, *, sasl: bool = False, share: bool = False
) -> Plan:
    tests = src / "tests"
    if not (tests / "test-runner").exists():
        raise SystemExit(
            f"{tests}/test-runner not built: cd {src} && ./configure && make && make -C tests build"
        )
    # The share tests' subtests are not marked quick: in quick mode they would do nothing.
    quick = sel.quick if sel.quick is not None else not share
    runner = ["nice", "-n", "10", "./test-runner", "-L", "-E", *(["-Q"] if quick else []), "-p1"]
    env = {
        "RDKAFKA_TEST_CONF": str(work / "test.conf"),
        # the version whose API versions Jackalope serves (the share-consumer tests need 4.2.0)
        "TEST_KAFKA_VERSION": sel.version("PEER_LIBRDKAFKA_KAFKA_VERSION", LIBRDKAFKA_SHARE_VERSION),
        "LD_LIBRARY_PATH": f"{src / 'src'}:{src / 'src-cpp'}",
    }
    if sel.tests:
        env["TESTS"] = ",".join(sel.tests)
    elif sasl:
        env["TESTS"] = os.environ.get("PEER_LIBRDKAFKA_SASL_TESTS", LIBRDKAFKA_SASL_TESTS)
    elif share:
        env["TESTS"] = os.environ.get("PEER_LIBRDKAFKA_SHARE_TESTS", LIBRDKAFKA_SHARE_TESTS)
    elif os.environ.get("PEER_LIBRDKAFKA_TESTS"):
        env["TESTS"] = os.environ["PEER_LIBRDKAFKA_TESTS"]
    if sel.keyword:
        raise SystemExit("-k selects pytest tests; librdkafka's are selected with --test NNNN")

    def configure(brokers: Brokers, work: Path) -> None:
        conf = ["test.timeout.multiplier=2"]
        if sasl:
            conf += [
                f"metadata.broker.list={brokers.serves['sasl'].kafka}",
                "security.protocol=SASL_PLAINTEXT",
                "sasl.mechanism=SCRAM-SHA-512",
                "sasl.username=alice",
                "sasl.password=alice-secret",
            ]
        else:
            conf.append(f"metadata.broker.list={brokers.serves['plain'].kafka}")
        (work / "test.conf").write_text("\n".join(conf) + "\n")

    broker_args = ["--kafka-num-partitions", "4"]
    if sasl and broker_has_setting("kafka_connections_max_reauth_ms"):
        # librdkafka's test cluster: connections.max.reauth.ms=10000 (0142_reauthentication
        # skips itself without it).
        broker_args += ["--kafka-connections-max-reauth-ms", "10000"]
    if share and broker_has_setting("kafka_share_min_record_lock_duration_ms"):
        # librdkafka's test cluster (cluster_testing.py, run-all-tests.sh) lowers
        # group.share.min.record.lock.duration.ms to 1000: the tests set 3000 on their groups.
        broker_args += ["--kafka-share-min-record-lock-duration-ms", "1000"]
    return Plan(runner, tests, env, work / "output.log", parse_librdkafka, tuple(broker_args), configure)


# The tests that need a SASL listener (and a few basics, over SASL).
LIBRDKAFKA_SASL_TESTS = "0001,0012,0030,0135,0142"


# The share-consumer (KIP-932) tests that need a broker; they run for broker versions >= 4.2.0.
LIBRDKAFKA_SHARE_TESTS = "0170,0171,0172,0173,0174,0175,0176,0177,0178,0179,0180,0181,0184,0185"
LIBRDKAFKA_SHARE_VERSION = "4.2.0"


def plan_librdkafka_sasl(src: Path, work: Path, sel: Selection = ALL) -> Plan:
    return plan_librdkafka(src, work, sel, sasl=True)


def plan_librdkafka_share(src: Path, work: Path, sel: Selection = ALL) -> Plan:
    return plan_librdkafka(src, work, sel, share=True)


SUITES: dict[str, Callable[[Path, Path, Selection], Plan]] = {
    "kafka-python": plan_kafka_python,
    "aiokafka": plan_aiokafka,
    "confluent-kafka": plan_confluent,
    "confluent-kafka-848": plan_confluent_848,
    "librdkafka": plan_librdkafka,
    "librdkafka-sasl": plan_librdkafka_sasl,
    "librdkafka-share": plan_librdkafka_share,
}
# Suites that run from another suite's source tree.
SOURCE_OF = {
    "confluent-kafka-848": "confluent-kafka",
    "librdkafka-sasl": "librdkafka",
    "librdkafka-share": "librdkafka",
}
# Not run unless named with --only (they repeat tests of another suite under other settings).
ON_REQUEST = {"librdkafka-share"}


def parse_junit(report: Path) -> dict[str, tuple[str, str]]:
    tests: dict[str, tuple[str, str]] = {}
    if not report.exists():
        return tests
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                lines = (child.get("message") or child.text or "").strip().splitlines()
                message = lines[0][:300] if lines else ""
                break
        if name in tests and tests[name][0] != "passed" and outcome == "error":
            continue  # a teardown error after a failure: keep the failure
        tests[name] = (outcome, message) if not (name in tests and outcome == "passed") else tests[name]
    return tests


ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\(B")
RDK_RESULT = re.compile(r"=+ Test (\S+) (PASSED|FAILED|SKIPPED)")
RDK_SKIP = re.compile(r"\[(\d{4}_\S+)\s*/[^]]*\] (?:WARN: )?SKIPPING TEST: (.*)")
# A local (mock cluster) test that -L leaves out: not a broker test, not counted.
RDK_NOT_SELECTED = "Filtered due to negative test flags"
RDK_RUNNING = re.compile(r"=+ Running test (\S+) =+")
RDK_FAIL = re.compile(r'### Test "(\d{4}_[^" ]+)[^"]*" failed at')


def parse_librdkafka(log: Path) -> dict[str, tuple[str, str]]:
    tests: dict[str, tuple[str, str]] = {}
    if not log.exists():
        return tests
    lines = [ANSI.sub("", line) for line in log.read_text(errors="replace").splitlines()]
    reasons: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = RDK_FAIL.search(line)
        if m and tests.get(m.group(1), ("",))[0] != "failed":
            tests[m.group(1)] = ("failed", (lines[i + 1] if i + 1 < len(lines) else "")[:300])
        m = RDK_SKIP.search(line)
        if m:
            reasons.setdefault(m.group(1), m.group(2).strip()[:300])
        m = RDK_RESULT.search(line)
        if m:
            name, result = m.group(1), m.group(2).lower()
            if tests.get(name, ("",))[0] != "failed":
                tests[name] = (result, reasons.get(name, ""))
    # Tests in the summary table that did not print a result line (timed out, crashed)
    for line in lines:
        m = re.match(r"\|\s*(\d{4}_\S+)\s*\|\s*(\w+)\s*\|", line)
        if m and m.group(1) not in tests:
            tests[m.group(1)] = (m.group(2).lower(), reasons.get(m.group(1), ""))
    # A test that started and never ended: the suite was stopped (timeout) or crashed in it.
    for line in lines:
        m = RDK_RUNNING.search(line)
        if m:
            tests.setdefault(m.group(1), ("failed", "did not finish (stopped at the timeout, or crashed)"))
    # Skipped tests past the point where the summary table was cut short (its last lines can be
    # lost when the runner exits): their SKIPPING TEST line is all there is.
    for name, reason in reasons.items():
        tests.setdefault(name, ("skipped", reason))
    return {name: result for name, result in tests.items() if result[1] != RDK_NOT_SELECTED}


def run_suite(name: str, src: Path, root: Path, timeout: float, sel: Selection = ALL) -> Outcome:
    work = root / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plan = SUITES[name](src.resolve(), work, sel)
    brokers: Brokers = start_brokers(work / "brokers", plan.broker_args)
    outcome = Outcome(name)
    try:
        if plan.configure is not None:
            plan.configure(brokers, work)
        env = {**os.environ, **brokers.env(), **plan.env}
        if "BROKERS" in plan.env:
            env["BROKERS"] = brokers.serves["plain"].kafka
        if "PYTHONPATH" in plan.env:
            env["PYTHONPATH"] = plan.env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
        started = time.monotonic()
        with (work / "output.log").open("w") as out:
            proc = subprocess.Popen(
                plan.cmd, cwd=plan.cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                outcome.note = f"stopped at the {timeout:.0f} s timeout"
                os.killpg(proc.pid, signal.SIGINT)  # pytest still writes its report
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        outcome.note = (outcome.note + f" ({time.monotonic() - started:.0f} s)").strip()
    finally:
        brokers.stop()
        (work / "brokers.log").write_text(brokers.logs())
    outcome.tests = plan.parse(plan.report)
    if not outcome.tests:
        # nothing ran: the suite did not load (a missing dev package, a broken overlay...)
        outcome.note = f"NOTHING RAN (exit {proc.returncode}), see {work / 'output.log'} {outcome.note}"
    for result, _ in outcome.tests.values():
        outcome.counts[result] = outcome.counts.get(result, 0) + 1
    return outcome


def compare(outcomes: list[Outcome], baseline: dict[str, dict[str, object]]) -> str:
    """The tests whose outcome differs from ``baseline`` (a results.json of an earlier run, or
    a directory of them), suite by suite; tests the baseline did not run are left out."""
    lines = []
    for o in outcomes:
        old = baseline.get(o.suite, {}).get("tests")
        if not isinstance(old, dict):
            lines.append(f"{o.suite}: not in the baseline")
            continue
        changed = [
            (name, old[name][0], now, message)
            for name, (now, message) in sorted(o.tests.items())
            if name in old and old[name][0] != now
        ]
        lines.append(f"{o.suite}: {len(changed)} changed against the baseline")
        lines += [f"  {was} -> {now}: {name}  {message[:160]}" for name, was, now, message in changed]
    return "\n".join(lines)


def load_baseline(path: Path) -> dict[str, dict[str, object]]:
    files = sorted(path.rglob("results.json")) if path.is_dir() else [path]
    merged: dict[str, dict[str, object]] = {}
    for f in files:
        merged.update(json.loads(f.read_text()))
    return merged


def table(outcomes: list[Outcome]) -> str:
    rows = ["| suite | passed | failed | error | skipped | note |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.counts
        rows.append(
            f"| {o.suite} | {c.get('passed', 0)} | {c.get('failed', 0)} | {c.get('error', 0)} "
            f"| {c.get('skipped', 0)} | {o.note} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for suite in SUITES:
        if suite in SOURCE_OF:
            continue  # runs from another suite's tree
        env = "PEER_" + suite.upper().replace("-", "_") + "_SRC"
        parser.add_argument(
            f"--{suite}", type=Path, default=os.environ.get(env), help=f"source tree (${env})"
        )
    parser.add_argument("--only", action="append", choices=list(SUITES), help="run only these suites")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per suite")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (pytest suites)")
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        help="a pytest node id or path in the suite's tree (replaces its default targets), "
        "or a librdkafka test number; repeatable",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a results.json of an earlier run (or a directory holding some): print what changed",
    )
    parser.add_argument(
        "--quick",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="librdkafka's quick mode, -Q (default: on, off for librdkafka-share)",
    )
    parser.add_argument(
        "--kafka-version",
        help="the Kafka version the suite is told it runs against "
        "(default per suite: kafka-python 4.2.0, aiokafka 2.8.1, librdkafka 4.2.0, "
        f"librdkafka-share {LIBRDKAFKA_SHARE_VERSION})",
    )
    parser.add_argument("--work", type=Path, default=None, help="work directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    sel = Selection(args.keyword, tuple(args.test), args.kafka_version, args.quick)
    root = args.work or Path(tempfile.mkdtemp(prefix="jackalope-peer-"))
    root.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for suite in SUITES:
        src = getattr(args, SOURCE_OF.get(suite, suite).replace("-", "_"))
        if src is None or (args.only and suite not in args.only):
            continue
        if not args.only and suite in ON_REQUEST:
            continue
        print(f"== {suite} from {src} (work: {root / suite})", flush=True)
        outcome = run_suite(suite, Path(src), root, args.timeout, sel)
        outcomes.append(outcome)
        print(table([outcome]).splitlines()[-1], flush=True)
    results = {o.suite: {"counts": o.counts, "note": o.note, "tests": o.tests} for o in outcomes}
    (root / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    print(table(outcomes))
    print(f"details: {root / 'results.json'}")
    if args.baseline is not None:
        print(compare(outcomes, load_baseline(args.baseline)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
