"""Start (or join) the Spark session of a lake release: lazily, quietly, failing in one line.

pyspark is an optional extra (``pip install crisis-exposure[spark]``) and needs a Java
runtime; both are looked for only when ``--engine spark`` is asked, and a missing one is
one line (exit 2), never a JVM stack trace. Spark's banner and INFO/WARN logging would
flood the command's output: the driver gets a log4j2 configuration that logs errors
only, and the JVM's console goes to a log file of the run (executors on a cluster keep
their own logging).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geo.errors import InputError

_QUIET_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = off
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = off
"""


def parse_spark_conf(pairs: Sequence[str]) -> dict[str, str]:
    """Return ``--spark-conf key=value`` settings as a dict.

    Raises
    ------
    InputError
        For a setting without ``=`` or whose key is not a ``spark.*`` key.
    """
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.startswith("spark."):
            raise InputError(
                f"--spark-conf {pair!r}: expected spark.KEY=VALUE (e.g. spark.executor.memory=4g)."
            )
        settings[key] = value.strip()
    return settings


def _java_home_ok() -> bool:
    """Return whether a Java runtime can be found (JAVA_HOME or ``java`` on the PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


def require_spark() -> None:
    """Check that pyspark and a Java runtime are there, without starting anything.

    Raises
    ------
    InputError
        Naming what is missing and how to install it.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(
            "--engine spark needs pyspark: pip install 'crisis-exposure[spark]' "
            "(and a Java 17+ runtime, e.g. Debian's openjdk-17-jre-headless)."
        ) from None
    if not _java_home_ok():
        raise InputError(
            "--engine spark needs a Java runtime (17 or later): install one (Debian: "
            "apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
        )


def start_spark(master: str = "local[*]", settings: dict[str, str] | None = None) -> Any:
    """Return a SparkSession for a lake release (created, or the running one).

    Parameters
    ----------
    master
        Spark master URL: ``local[*]`` (this machine), ``spark://host:7077``, ``yarn``,
        ``k8s://…``.
    settings
        ``spark.*`` settings (executor memory, instances…), applied as given.

    The driver's scratch space (``spark.local.dir``, the JVM's ``java.io.tmpdir``) is a
    folder of this run readable by its user alone, removed at exit.

    Raises
    ------
    InputError
        When pyspark is not installed or no Java runtime is found, or Spark cannot
        start (one line each).
    """
    require_spark()
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:  # this process started one already
        return SparkSession.builder.getOrCreate()
    folder = Path(tempfile.mkdtemp(prefix="crisis-exposure-spark-"))  # readable by us alone
    (folder / "log4j2.properties").write_text(_QUIET_LOG4J2)
    # Spark's scratch space (shuffle and spill blocks: partial counts by cell,
    # nationality and category, small ones exact) and the JVM's temporary files go in
    # the private folder, not in /tmp (blockmgr-* there is readable by every local user).
    scratch = folder / "scratch"
    scratch.mkdir(mode=0o700)
    if master.startswith("local"):  # local workers run this very interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = (
        SparkConf()
        .setMaster(master)
        .setAppName("crisis-exposure release")
        .set(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'} -Djava.io.tmpdir={scratch}",
        )
        .set("spark.local.dir", str(scratch))
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.sql.session.timeZone", "UTC")
        .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        .set("spark.sql.shuffle.partitions", "8" if master.startswith("local") else "200")
        .setAll(list((settings or {}).items()))
    )
    # The JVM's own console (its start-up notes, executor output in local mode) goes to a
    # log file of this run, so the command's output stays the command's.
    log_path = folder / "spark.log"
    try:
        # pyspark warns about pandas 3 wherever a pandas UDF is made; the UDFs here use
        # Series in, Series out, which it supports.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        with open(log_path, "wb") as log:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
            spark = SparkSession(SparkContext(conf=conf, gateway=gateway))
    except Exception as exc:  # JVM start-up failures come as many kinds
        raise InputError(
            f"Spark could not start (master {master}): {spark_failure(exc)} (see {log_path})"
        ) from None
    atexit.register(shutil.rmtree, folder, True)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# Root causes that mean the driver had no room for the counts it collects.
_DRIVER_MEMORY = ("TaskResultLost", "OutOfMemoryError", "Java heap space", "maxResultSize")


def spark_failure(exc: BaseException) -> str:
    """Return why a Spark job failed, in one line: its deepest cause, not the JVM's stack.

    A Py4J error's text is the whole Java stack trace; its last ``Caused by:`` names what
    went wrong (at 10M records in local mode with 1 GiB of driver memory: the counts'
    task results lost from the block manager). When that is the driver's memory, says
    how to give it more.
    """
    text = str(exc)
    causes = re.findall(r"Caused by: ([^\n]+)", text)
    first_line = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    reason = " ".join((causes[-1] if causes else first_line).split())[:300]
    if any(sign in reason for sign in _DRIVER_MEMORY):
        reason += (
            " (the driver had no room for the counts: give it more memory, e.g."
            " --spark-conf spark.driver.memory=4g)"
        )
    return reason
