"""Apache Kafka: one KRaft node (broker + controller) on the machine's Java 17.

The jars come from Maven Central through ``stack/pom.xml`` (``mvn
dependency:copy-dependencies``) into ``~/.cache/paystream/kafka-<version>/libs``,
resolved once per pom content (a marker file holds its hash). Under
``data_dir/kafka``: ``server.properties`` (generated from settings), ``data/``
(log.dirs, formatted once by ``kafka.tools.StorageTool``), ``logs/server.log``
(log4j2, configured by ``stack/log4j2.properties``), ``kafka.out`` (JVM stdout and
stderr) and ``kafka.pid``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient

from settings import Settings
from stack.common import (
    ServiceStatus,
    cmdline,
    ensure_dir,
    ensure_loopback,
    pid_alive,
    read_pid,
    refuse_foreign,
    refuse_other_listener,
    require_binary,
    service_status,
    spawn_daemon,
    stop_daemon,
    tail,
    wait_daemon_ready,
)
from stack.errors import StackError

__all__ = [
    "NAME",
    "broker_address",
    "down",
    "ensure_jars",
    "jars_resolved",
    "libs_dir",
    "preflight",
    "status",
    "up",
]

NAME: Final = "kafka"
START_TIMEOUT_S: Final = 120.0
STOP_TIMEOUT_S: Final = 60.0
RESOLVE_TIMEOUT_S: Final = 900
JAVA_HINT: Final = "install a JDK 17 (apt-get install openjdk-17-jre-headless)"
MVN_HINT: Final = "install Maven to fetch the Kafka jars (apt-get install maven)"
_HERE: Final = Path(__file__).resolve().parent
POM: Final = _HERE / "pom.xml"
LOG4J2_CONFIG: Final = _HERE / "log4j2.properties"
_MAIN_CLASS: Final = "kafka.Kafka"

log = logging.getLogger("stack")


def broker_address(settings: Settings) -> tuple[str, int]:
    """The single local broker of ``KAFKA_BROKERS`` as (host, port)."""
    if len(settings.kafka_brokers) != 1:
        raise StackError(
            f"kafka: KAFKA_BROKERS lists {len(settings.kafka_brokers)} brokers; the stack "
            "runs a single local node (set one host:port)"
        )
    host, _, port = settings.kafka_brokers[0].rpartition(":")
    ensure_loopback(NAME, host, "KAFKA_BROKERS")
    return host, int(port)


def cache_root() -> Path:
    """``~/.cache/paystream``: outside the repository, shared by every profile."""
    return Path.home() / ".cache" / "paystream"


def libs_dir(settings: Settings) -> Path:
    """The classpath directory for ``settings.kafka_version``."""
    return cache_root() / f"kafka-{settings.kafka_version}" / "libs"


def _home(settings: Settings) -> Path:
    return settings.data_dir / NAME


def _pid_path(settings: Settings) -> Path:
    return _home(settings) / "kafka.pid"


def _out_path(settings: Settings) -> Path:
    return _home(settings) / "kafka.out"


def _logs_dir(settings: Settings) -> Path:
    return _home(settings) / "logs"


def _props_path(settings: Settings) -> Path:
    return _home(settings) / "server.properties"


def _log_files(settings: Settings) -> list[Path]:
    return [_out_path(settings), _logs_dir(settings) / "server.log"]


def _our_pid(settings: Settings) -> int | None:
    pid = read_pid(_pid_path(settings))
    if pid is None or not pid_alive(pid):
        return None
    line = cmdline(pid)
    return pid if _MAIN_CLASS in line and str(_props_path(settings)) in line else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    ensure_dir(path.parent)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pom_digest(version: str) -> str:
    return hashlib.sha256(POM.read_bytes() + version.encode()).hexdigest()


def ensure_jars(settings: Settings) -> Path:
    """Resolve the Kafka classpath with Maven unless this pom and version already were."""
    version = settings.kafka_version
    libs = libs_dir(settings)
    marker = libs.parent / ".resolved"
    digest = _pom_digest(version)
    with _locked(libs.parent / ".lock"):
        if jars_resolved(settings):
            return libs
        mvn = require_binary("mvn", MVN_HINT)
        partial = libs.with_name("libs.partial")
        shutil.rmtree(partial, ignore_errors=True)
        log.info("resolving Kafka %s jars with Maven into %s", version, libs)
        argv = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
            "dependency:copy-dependencies", f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime", f"-Dkafka.version={version}",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RESOLVE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StackError(
                f"kafka: mvn did not resolve the jars within {RESOLVE_TIMEOUT_S}s"
            ) from None
        if result.returncode != 0 or not (partial / f"kafka_2.13-{version}.jar").is_file():
            lines = [ln.strip() for ln in (result.stdout + result.stderr).splitlines()]
            errors = [ln for ln in lines if "ERROR" in ln] or lines
            raise StackError(
                f"kafka: mvn could not resolve org.apache.kafka:kafka_2.13:{version} "
                f"(exit {result.returncode}): {' | '.join(errors[-3:])[-600:]}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        marker.write_text(digest + "\n")
        return libs


def _java() -> str:
    java = require_binary("java", JAVA_HINT)
    result = subprocess.run(
        [java, "-version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise StackError(f"java at {java} did not report a version: {JAVA_HINT}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < 17:
        raise StackError(f"java at {java} is version {major}; Kafka 4 needs 17+: {JAVA_HINT}")
    return java


def _heap_bytes(heap: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", heap.strip())
    if not match:
        raise StackError(f"kafka: PAYSTREAM_KAFKA_HEAP={heap!r} is not a JVM size like 768m")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    return int(match.group(1)) * scale


def _jvm_memory(heap: str) -> list[str]:
    initial = "256m" if _heap_bytes(heap) >= 256 << 20 else heap
    return [f"-Xms{initial}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]


def _server_properties(settings: Settings, port: int) -> str:
    controller = settings.kafka_controller_port
    data = _home(settings) / "data"
    return "\n".join(
        [
            "# Generated by `paystream stack up` from settings; edits are overwritten.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "auto.create.topics.enable=false",
            f"num.partitions={settings.kafka_partitions}",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=6",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=4",
            "num.recovery.threads.per.data.dir=1",
            "background.threads=4",
            "log.cleaner.threads=1",
            "log.cleaner.dedupe.buffer.size=16777216",
            "log.retention.hours=168",
            "",
        ]
    )


def _new_cluster_id() -> str:
    """A Kafka ``Uuid`` string (url-safe base64, no padding, never starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _java_base(java: str, settings: Settings, libs: Path) -> list[str]:
    return [
        java,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={_logs_dir(settings)}",
        "-Djava.awt.headless=true",
        "-cp",
        f"{libs}/*",
    ]


def _format_storage(java: str, settings: Settings, libs: Path) -> None:
    data = _home(settings) / "data"
    if (data / "meta.properties").is_file():
        return
    cluster_id = _new_cluster_id()
    log.info("formatting Kafka storage %s (cluster id %s)", data, cluster_id)
    argv = [
        *_java_base(java, settings, libs),
        "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "kafka.tools.StorageTool", "format", "-t", cluster_id,
        "-c", str(_props_path(settings)),
    ]  # fmt: skip
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    (_home(settings) / "format.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
        raise StackError(
            f"kafka: StorageTool format failed (exit {result.returncode}): "
            f"{' | '.join(lines[-3:])[-600:]}"
        )


def _start(settings: Settings, port: int) -> int:
    """Resolve jars, write config, format once, spawn kafka.Kafka. Returns the pid."""
    java = _java()
    libs = ensure_jars(settings)
    home = ensure_dir(_home(settings))
    ensure_dir(_logs_dir(settings))
    _props_path(settings).write_text(_server_properties(settings, port))
    _format_storage(java, settings, libs)
    log.info("starting kafka on port %d (controller %d)", port, settings.kafka_controller_port)
    process = spawn_daemon(
        [
            *_java_base(java, settings, libs),
            *_jvm_memory(settings.kafka_heap),
            "-XX:+ExitOnOutOfMemoryError",
            _MAIN_CLASS,
            str(_props_path(settings)),
        ],
        log_path=_out_path(settings),
        pid_path=_pid_path(settings),
        cwd=home,
    )
    return process.pid


async def _metadata(host: str, port: int) -> None:
    """A real metadata round trip: TCP connect, then the admin client lists topics."""
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()
    admin = AIOKafkaAdminClient(bootstrap_servers=f"{host}:{port}", request_timeout_ms=5000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def _refuse_foreign_ports(settings: Settings, host: str, port: int) -> None:
    refuse_foreign(NAME, host, port, "KAFKA_BROKERS", _home(settings))
    refuse_foreign(
        f"{NAME} controller",
        "127.0.0.1",
        settings.kafka_controller_port,
        "PAYSTREAM_KAFKA_CONTROLLER_PORT",
        _home(settings),
    )


def jars_resolved(settings: Settings) -> bool:
    """True when the classpath for this pom and version is already in the cache."""
    libs = libs_dir(settings)
    marker = libs.parent / ".resolved"
    return (
        marker.is_file()
        and marker.read_text().strip() == _pom_digest(settings.kafka_version)
        and (libs / f"kafka_2.13-{settings.kafka_version}.jar").is_file()
    )


def preflight(settings: Settings) -> None:
    """Fail fast: one local broker; java (and mvn if jars are missing) when we must start."""
    host, port = broker_address(settings)
    if _our_pid(settings) is None:
        _refuse_foreign_ports(settings, host, port)
        _java()
        if not jars_resolved(settings):
            require_binary("mvn", MVN_HINT)


async def up(settings: Settings) -> None:
    """Start the KRaft node unless ours already answers; wait for a metadata round trip."""
    host, port = broker_address(settings)
    pid = _our_pid(settings)
    if pid is None:
        _refuse_foreign_ports(settings, host, port)
        pid = await asyncio.to_thread(_start, settings, port)
    else:
        refuse_other_listener(NAME, "broker", host, port, pid)
    await wait_daemon_ready(
        NAME,
        lambda: _metadata(host, port),
        pid,
        within_s=START_TIMEOUT_S,
        logs=_log_files(settings),
    )


def down(settings: Settings) -> bool:
    """SIGTERM (controlled shutdown), wait, SIGKILL. True if ours was running."""
    return stop_daemon(NAME, _our_pid(settings), _pid_path(settings), STOP_TIMEOUT_S)


def status(settings: Settings) -> ServiceStatus:
    """up / starting / down / foreign, with the pid when it is ours."""
    host, port = broker_address(settings)
    return service_status(NAME, host, port, _our_pid(settings), _home(settings))


def tail_logs(settings: Settings) -> str:
    """The last lines of the broker's logs (for diagnostics)."""
    return tail(_log_files(settings))
