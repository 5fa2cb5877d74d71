"""tinybpf export: ebpf_exporter's configs over real BPF programs, scraped for real.

Fixtures: tests/bpf/export_*.bpf.c with their configs in tests/bpf/export/*.yaml. Activity
comes from child processes renamed 'tbx-...' (the programs count only those), so other
processes on the machine do not change the numbers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import BPF_BUILD, TESTS

pytest.importorskip("yaml", reason="the export extra (PyYAML) is not installed")

from tinybpf.export import (
    ConfigError,
    Counter,
    DecoderSpec,
    Exporter,
    Histogram,
    Label,
    load_configs,
)
from tinybpf.export.collector import histogram_buckets

CONFIGS = TESTS / "bpf" / "export"

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str | bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of a text exposition."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples: dict, metric: str, **labels: str) -> float:
    return samples[(metric, frozenset(labels.items()))]


def config_dir(tmp_path: Path, *names: str, yaml: dict[str, str] | None = None) -> Path:
    """A --config.dir with <name>.yaml and <name>.bpf.o for each fixture name."""
    for name in names:
        obj = BPF_BUILD / f"{name}.bpf.o"
        if not obj.exists():
            pytest.fail(f"fixture {obj} is missing: run 'make compile'")
        (tmp_path / f"{name}.bpf.o").symlink_to(obj)
        text = (yaml or {}).get(name) or (CONFIGS / f"{name}.yaml").read_text()
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def run_child(code: str, comm: str = "tbx-test") -> int:
    """Run Python code in a child renamed ``comm``; returns its pid."""
    prelude = f"import ctypes, os; ctypes.CDLL(None).prctl(15, {comm.encode()!r}, 0, 0, 0)\n"
    # no output: the child's own write() calls would count too
    proc = subprocess.Popen(
        [sys.executable, "-c", prelude + code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.wait(timeout=60) == 0
    return proc.pid


WRITES = "import os\nfd = os.open('/dev/null', os.O_WRONLY)\n" + "".join(
    f"os.write(fd, b'x' * {n})\n" for n in (0, 300, 5000)
)


@pytest.fixture
def basic(tmp_path):
    with Exporter.from_dir(config_dir(tmp_path, "export_basic"), ["export_basic"]) as ex:
        yield ex


# --- counters, labels, per-CPU maps ------------------------------------------------------------


@pytest.mark.root
def test_counters_labels_padding_percpu_and_struct_values(basic):
    pid = run_child("[os.getppid() for _ in range(5)]\n" + WRITES, comm="tbx-counters")
    s = parse(basic.render())
    # string + regexp and uint + syscall decoders on a 16 + 8 byte key
    assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-counters", syscall="getppid") == 5
    assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-counters", syscall="write") == 3
    # a u32 then a u8 with 3 bytes of padding: sizes 4 and 4
    assert value(s, "ebpf_exporter_padded_total", pid=str(pid), op="write") == 5
    # per-CPU: a 'cpu' label gives one series per CPU ...
    ncpu = len(
        [k for k in s if k[0] == "ebpf_exporter_percpu_calls_total" and ("kind", "getppid") in k[1]]
    )
    from tinybpf import possible_cpus

    assert ncpu == possible_cpus()
    per_cpu = sum(v for (n, lb), v in s.items() if n == "ebpf_exporter_percpu_calls_total")
    assert per_cpu == 5
    # ... and without one the CPUs are summed; allow_unknown passes the key through
    assert value(s, "ebpf_exporter_percpu_summed_total", kind="1") == 5
    # struct values: one counter per listed field
    assert value(s, "ebpf_exporter_write_stats_calls_total", slot="0") == 3
    assert value(s, "ebpf_exporter_write_stats_bytes_total", slot="0") == 5300


def _buckets(s: dict, name: str) -> dict[str, float]:
    return {dict(lb)["le"]: v for (n, lb), v in s.items() if n == f"ebpf_exporter_{name}_bucket"}


@pytest.mark.root
def test_histogram_bucket_types_cumulative_backfilled_with_sum(basic):
    run_child(WRITES, comm="tbx-hist")  # write() sizes 0, 300 and 5000
    s = parse(basic.render())
    exp2 = _buckets(s, "write_size_exp2")
    assert len(exp2) == 27 + 1  # bucket_min..bucket_max, backfilled, and +Inf
    assert exp2["1"] == 1 and exp2["256"] == 1 and exp2["512"] == 2 and exp2["4096"] == 2
    assert exp2["8192"] == 3 and exp2["6.7108864e+07"] == 3 and exp2["+Inf"] == 3
    assert value(s, "ebpf_exporter_write_size_exp2_sum") == 5300
    assert value(s, "ebpf_exporter_write_size_exp2_count") == 3
    exp2zero = _buckets(s, "write_size_exp2zero")
    assert exp2zero["0"] == 1 and exp2zero["1"] == 1 and exp2zero["512"] == 2
    assert exp2zero["8192"] == 3 and "6.7108864e+07" not in exp2zero
    linear = _buckets(s, "write_size_linear")
    assert linear["0"] == 1 and linear["200"] == 1 and linear["300"] == 2
    assert linear["1900"] == 2 and linear["2000"] == 3 and len(linear) == 21 + 1
    assert value(s, "ebpf_exporter_write_size_linear_sum") == 5300  # 53 x multiplier 100
    fixed = _buckets(s, "write_size_fixed")
    assert fixed == {"1": 1, "10": 1, "100": 1, "1000": 3, "+Inf": 3}
    assert value(s, "ebpf_exporter_write_size_fixed_sum") == 5300
    # per-CPU histogram, summed over CPUs, multiplier 1/1024 (bytes to KiB)
    pc = _buckets(s, "write_size_percpu")
    assert pc["0.0009765625"] == 1 and pc["8"] == 3 and pc["+Inf"] == 3
    assert value(s, "ebpf_exporter_write_size_percpu_sum") == 5300 / 1024


def test_histogram_buckets_from_counts():
    lb = (Label("bucket", 8, (DecoderSpec("uint"),)),)
    h = Histogram("h", "h", "exp2zero", lb, 2.0, 0, 3)
    assert histogram_buckets(h, {0: 1, 2: 4, 4: 3}) == (
        [(0.0, 1), (2.0, 1), (4.0, 5), (8.0, 5)],
        5,
        6.0,
    )
    f = Histogram("f", "f", "fixed", lb, 1.0, bucket_keys=(5.0, 50.0))
    assert histogram_buckets(f, {5: 2, 7: 1, 51: 9}) == ([(5.0, 2), (50.0, 2)], 2, 9.0)


@pytest.mark.root
def test_builtin_metrics(basic):
    from tinybpf import __version__

    s = parse(basic.render())
    assert value(s, "ebpf_exporter_enabled_configs", name="export_basic") == 1
    infos = {dict(lb)["program"]: dict(lb) for (n, lb), _ in s.items()
             if n == "ebpf_exporter_ebpf_program_info"}  # fmt: skip
    assert set(infos) == {"count_syscalls", "count_getppid", "hist_write"}
    obj = basic.runtimes[0].obj
    for name, lb in infos.items():
        kinfo = obj.program(name).kernel_info()
        assert lb["id"] == str(kinfo.id) and lb["tag"] == kinfo.tag
        assert lb["config"] == "export_basic"
        assert value(s, "ebpf_exporter_ebpf_program_attached", id=lb["id"]) == 1
        assert ("ebpf_exporter_ebpf_program_run_count_total", frozenset({("id", lb["id"])})) in s
        assert ("ebpf_exporter_ebpf_program_run_time_seconds", frozenset({("id", lb["id"])})) in s
    assert value(s, "ebpf_exporter_decoder_errors_total", config="export_basic") == 0
    build = [lb for (n, lb) in s if n == "ebpf_exporter_build_info"]
    assert dict(build[0])["version"] == __version__


@pytest.mark.root
def test_run_time_stats_with_bpf_stats_enabled(basic):
    import tinybpf

    with tinybpf.enable_stats():
        run_child("[os.getppid() for _ in range(20)]", comm="tbx-stats")
        s = parse(basic.render())
    pid = str(basic.runtimes[0].obj.program("count_getppid").kernel_info().id)
    assert value(s, "ebpf_exporter_ebpf_program_run_count_total", id=pid) >= 20
    assert value(s, "ebpf_exporter_ebpf_program_run_time_seconds", id=pid) > 0


# --- attach kinds ------------------------------------------------------------------------------


@pytest.mark.root
def test_uprobe_perf_event_kaddrs_and_a_program_that_fails_to_attach(tmp_path, caplog):
    from helpers.kernel import uprobe_unavailable_reason

    reason = uprobe_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Exporter.from_dir(config_dir(tmp_path, "export_attach"), ["export_attach"]) as ex:
        run_child("os.getpid()", comm="tbx-uprobe")
        deadline = time.monotonic() + 5
        while True:  # the software CPU clock samples at 199 Hz on every CPU
            s = parse(ex.render())
            if value(s, "ebpf_exporter_cpu_samples_total", slot="0") > 0:
                break
            assert time.monotonic() < deadline, "no perf_event sample in 5 s"
            sum(range(200_000))
        assert value(s, "ebpf_exporter_getpid_calls_total", slot="0") == 1
        assert value(s, "ebpf_exporter_kaddr_seen_total", slot="0") == 1  # kaddrs were set
        obj = ex.runtimes[0].obj
        assert obj.globals["kaddr_schedule"] != 0
        ids = {p: str(obj.program(p).kernel_info().id) for p in obj.programs}
        assert value(s, "ebpf_exporter_ebpf_program_attached", id=ids["on_getpid"]) == 1
        assert value(s, "ebpf_exporter_ebpf_program_attached", id=ids["on_cpu_clock"]) == 1
        assert value(s, "ebpf_exporter_ebpf_program_attached", id=ids["xdp_nowhere"]) == 0
    assert "xdp_nowhere" in caplog.text and "tbexp-missing" in caplog.text


@pytest.mark.root
def test_strict_makes_an_attach_failure_fatal(tmp_path):
    ex = Exporter.from_dir(config_dir(tmp_path, "export_attach"), ["export_attach"], strict=True)
    with pytest.raises(OSError, match=r"xdp_nowhere.*--config.strict"):
        ex.start()
    assert ex.runtimes == []  # everything detached and closed


@pytest.mark.root
def test_xdp_ifname_section_in_a_namespace(tmp_path):
    from helpers.attach_env import ip, netns
    from helpers.kernel import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns("tbexa") as ns_a, netns("tbexb") as ns_b:
        ip("link", "add", "tbexp0", "netns", ns_a.name, "type", "veth",
           "peer", "name", "tbexp1", "netns", ns_b.name)  # fmt: skip
        for ns, dev, addr in ((ns_a, "tbexp0", "198.18.77.1"), (ns_b, "tbexp1", "198.18.77.2")):
            ip("-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns.name, "link", "set", dev, "up")
        ex = Exporter.from_dir(config_dir(tmp_path, "export_net"), ["export_net"])
        with ns_a.entered():  # 'tbexp0' exists only in namespace a
            ex.start()
        try:
            with ns_a.entered():
                rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                rx.bind(("198.18.77.1", 0))
            with ns_b.entered():
                tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(3):
                tx.sendto(b"tinybpf%d" % i, ("198.18.77.1", rx.getsockname()[1]))
            rx.settimeout(5)
            for _ in range(3):
                rx.recv(100)
            tx.close()
            rx.close()
            with ns_a.entered():  # the ifname decoder looks the index up where it runs
                s = parse(ex.render())
            assert (
                value(
                    s,
                    "ebpf_exporter_xdp_packets_total",
                    interface="tbexp0",
                    protocol="udp",
                    source="198.18.77.2",
                )
                == 3
            )
        finally:
            ex.close()


# --- bad input ---------------------------------------------------------------------------------

BAD_YAML = "metrics:\n  counters:\n    - name: x\n     help: y\n"
BAD_SCHEMA = """\
metrics:
  counters:
    - name: syscalls_total
      help: h
      labels:
        - name: comm
          size: 16
          decoders:
            - name: strnig
        - name: syscall
          decoders:
            - name: uint
  histograms:
    - name: write_size_exp2
      help: h
      bucket_type: exp3
      bucket_max: 26
      labels:
        - name: bucket
          size: 8
          decoders:
            - name: uint
    - name: write_size_linear
      help: h
      bucket_type: linear
      bucket_max: 20
      labels:
        - name: bucket
          size: 8
          decoders:
            - name: hex
"""
BAD_OBJECT = """\
metrics:
  counters:
    - name: no_such_map
      help: h
      labels:
        - name: a
          size: 8
          decoders: [{name: uint}]
    - name: padded_total
      help: h
      labels:
        - name: pid
          size: 4
          decoders: [{name: uint}]
        - name: op
          size: 1
          decoders: [{name: uint}]
"""


def test_yaml_error_names_file_line_and_fix(tmp_path):
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": BAD_YAML})
    with pytest.raises(ConfigError) as e:
        load_configs(d, ["export_basic"])
    (issue,) = e.value.issues
    assert issue.file.endswith("export_basic.yaml") and issue.line == 4
    assert "not valid YAML" in str(e.value) and "fix:" in str(e.value)


def test_schema_errors_all_reported_with_key_and_fix(tmp_path):
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": BAD_SCHEMA})
    with pytest.raises(ConfigError) as e:
        load_configs(d, ["export_basic"])
    text = str(e.value)
    keys = {i.key for i in e.value.issues}
    assert "metrics.counters[syscalls_total].labels[0].decoders[0].name" in keys
    assert "did you mean 'string'?" in text
    assert "metrics.counters[syscalls_total].labels[1].size" in keys
    assert "metrics.histograms[write_size_exp2].bucket_type" in keys
    assert "did you mean 'exp2'?" in text
    assert "metrics.histograms[write_size_linear].labels[0].decoders" in keys
    assert "must decode to an integer" in text
    assert all(i.file.endswith("export_basic.yaml") and i.line for i in e.value.issues)


@pytest.mark.root
def test_config_check_reports_missing_map_and_wrong_label_sizes_at_once(tmp_path):
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": BAD_OBJECT})
    proc = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic", "--config.check"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr
    assert "2 problems" in err
    assert "metrics.counters[no_such_map].name" in err and "no map named 'no_such_map'" in err
    assert "maps in the object:" in err and "padded_total" in err
    assert "label sizes add up to 5 bytes" in err and "is 8 bytes" in err
    assert "including padding" in err


@pytest.mark.root
def test_config_check_passes_on_good_configs(tmp_path):
    d = config_dir(tmp_path, "export_basic", "export_net", "export_attach")
    proc = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic,export_net,export_attach", "--config.check"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "configs ok" in proc.stdout


@pytest.mark.root
def test_decoder_errors_are_counted_and_the_scrape_goes_on(tmp_path):
    text = (CONFIGS / "export_basic.yaml").read_text()
    # inet_ip cannot decode the 8 byte syscall number: every entry is a decoder error
    text = text.replace(
        "            - name: uint\n            - name: syscall\n", "            - name: inet_ip\n"
    )
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": text})
    with Exporter.from_dir(d, ["export_basic"]) as ex:
        run_child("os.getppid()", comm="tbx-decerr")
        s = parse(ex.render())
        assert value(s, "ebpf_exporter_decoder_errors_total", config="export_basic") >= 1
        assert not [k for k in s if k[0] == "ebpf_exporter_syscalls_total"]
        assert value(s, "ebpf_exporter_percpu_summed_total", kind="1") == 1  # others go on


@pytest.mark.root
def test_max_series_drops_and_counts(tmp_path):
    with Exporter.from_dir(
        config_dir(tmp_path, "export_basic"), ["export_basic"], max_series=2
    ) as ex:
        run_child("[os.getppid() for _ in range(3)]\n" + WRITES, comm="tbx-card")
        s = parse(ex.render())
        series = [k for k in s if k[0] == "ebpf_exporter_syscalls_total"]
        assert len(series) == 2
        assert value(s, "ebpf_exporter_series_dropped_total", config="export_basic") >= 1


@pytest.mark.root
def test_label_cache_is_bounded(tmp_path):
    with Exporter.from_dir(
        config_dir(tmp_path, "export_basic"), ["export_basic"], label_cache_size=1
    ) as ex:
        run_child("[os.getppid() for _ in range(3)]", comm="tbx-cache")
        s = parse(ex.render())
        assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-cache", syscall="getppid") == 3
        assert all(len(r._cache) <= 1 for r in ex.runtimes[0].readers)
        assert value(s, "ebpf_exporter_label_cache_evictions_total", config="export_basic") > 0


@pytest.mark.root
def test_scrape_time_budget(tmp_path):
    with Exporter.from_dir(
        config_dir(tmp_path, "export_basic"), ["export_basic"], scrape_timeout=1e-9
    ) as ex:
        s = parse(ex.render())
        assert value(s, "ebpf_exporter_scrape_timeouts_total") == 1
        assert value(s, "ebpf_exporter_enabled_configs", name="export_basic") == 1


# --- Python API --------------------------------------------------------------------------------


@pytest.mark.root
def test_python_api_on_an_object_loaded_by_the_caller():
    import tinybpf

    with tinybpf.load(BPF_BUILD / "export_basic.bpf.o") as obj:
        link = obj.program("count_getppid").attach()
        uint = DecoderSpec("uint")
        ex = Exporter([]).add_object(
            obj,
            "mine",
            counters=[
                Counter(
                    "percpu_summed_total",
                    "getppid calls",
                    (Label("kind", 4, (uint, DecoderSpec("static_map", {"1": "getppid"}))),),
                )
            ],
        )
        run_child("[os.getppid() for _ in range(4)]", comm="tbx-api")
        s = parse(ex.render())
        assert value(s, "ebpf_exporter_percpu_summed_total", kind="getppid") == 4
        server = ex.serve("127.0.0.1:0")
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert parse(r.read()) == parse(ex.render())
        finally:
            server.close()
        ex.close()  # not the caller's object
        assert obj.maps["percpu_summed_total"].lookup_percpu_sum({"kind": 1}) == 4
        link.destroy()
        with pytest.raises(ConfigError, match="label sizes add up to 8 bytes"):
            Exporter([]).add_object(
                obj,
                "bad",
                counters=[Counter("percpu_summed_total", "h", (Label("kind", 8, (uint,)),))],
            )


# --- the command line with a real Prometheus ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _get(url)
        except OSError:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"{proc.args[0]} exited with {proc.returncode}: {out}")
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer in {timeout}s")
            time.sleep(0.2)


# Prometheus asks for OpenMetrics first; ebpf_exporter (promhttp.Handler() without
# EnableOpenMetrics) answers with the text format 0.0.4, and so does tinybpf export
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
EVERY_KIND = ["export_basic", "export_tpbtf", "export_attach", "export_usdt", "export_net"]


def _promtool(promtool: Path, text: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(promtool), "check", "metrics"], input=text, capture_output=True, timeout=60
    )


@pytest.mark.root
def test_cli_every_attach_kind_scraped_by_prometheus_promtool_and_sigterm(tmp_path):
    """One ``tinybpf export`` with configs of ours for raw_tp and tracepoints
    (export_basic), tp_btf, a uprobe and a perf_event (export_attach), USDT and XDP, in a
    network namespace with a veth pair; a real Prometheus scrapes it there. promtool passes
    on its default output."""
    from helpers.attach_env import ip, netns
    from helpers.kernel import netns_unavailable_reason, tp_btf_unavailable_reason
    from helpers.prometheus import binaries

    found = binaries()
    reason = (
        (found if isinstance(found, str) else None)
        or tp_btf_unavailable_reason("sys_enter")
        or _usdt_unavailable_reason()
        or netns_unavailable_reason()
    )
    if reason:
        pytest.skip(reason)
    assert not isinstance(found, str)
    prom_bin, promtool = found
    (tmp_path / "cfg").mkdir()
    d = config_dir(tmp_path / "cfg", "export_basic", "export_tpbtf", "export_attach", "export_net")
    usdt_target = _usdt_config(d)
    with netns("tbexa") as ns_a, netns("tbexb") as ns_b:
        ip("link", "add", "tbexp0", "netns", ns_a.name, "type", "veth",
           "peer", "name", "tbexp1", "netns", ns_b.name)  # fmt: skip
        for ns, dev, addr in ((ns_a, "tbexp0", "198.18.77.1"), (ns_b, "tbexp1", "198.18.77.2")):
            ip("-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns.name, "link", "set", dev, "up")

        def get(url: str, headers: dict[str, str] | None = None) -> tuple[bytes, str]:
            with ns_a.entered():  # the exporter and Prometheus listen in namespace a
                req = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(req, timeout=10) as r:
                    return bytes(r.read()), r.headers["Content-Type"]

        def wait(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    get(url)
                    return
                except OSError:
                    if proc.poll() is not None:
                        out = proc.stdout.read() if proc.stdout else ""
                        pytest.fail(f"{proc.args} exited with {proc.returncode}: {out}")
                    assert time.monotonic() < deadline, f"{url} did not answer in {timeout}s"
                    time.sleep(0.2)

        # nsenter --net: the namespace's network only (ip netns exec would also remount
        # /sys, hiding tracefs from the tracepoint attach)
        enter = ["nsenter", f"--net={ns_a.path}"]
        port, prom_port = 9435, 9090  # a fresh namespace: nothing else listens there
        exporter = subprocess.Popen(
            [*enter, sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
             f"--config.names={','.join(EVERY_KIND)}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.telemetry-path=/custom"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        prom = None
        try:
            url = f"http://127.0.0.1:{port}/custom"
            wait(url, exporter)
            run_child(
                "[os.getppid() for _ in range(7)]\n" + WRITES, comm="tbx-prom"
            )  # tp, raw_tp, tp_btf
            run_child("os.getpid()", comm="tbx-uprobe")  # uprobe
            _run_usdt_target(usdt_target, 2)  # usdt
            with ns_a.entered():  # xdp
                rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                rx.bind(("198.18.77.1", 0))
            with ns_b.entered():
                tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with rx, tx:
                for i in range(3):
                    tx.sendto(b"tinybpf%d" % i, ("198.18.77.1", rx.getsockname()[1]))
                rx.settimeout(5)
                for _ in range(3):
                    rx.recv(100)

            text, ctype = get(url, {"Accept": PROMETHEUS_ACCEPT})
            assert ctype == "text/plain; version=0.0.4; charset=utf-8"
            (tmp_path / "metrics.txt").write_bytes(text)
            # the default output passes promtool (format and lint): ebpf_exporter's
            # run-time counter keeps its name and labels, declared untyped
            check = _promtool(promtool, text)
            assert check.returncode == 0, check.stdout + check.stderr
            assert check.stdout == check.stderr == b""
            assert b"# TYPE ebpf_exporter_ebpf_program_run_time_seconds untyped\n" in text
            assert re.search(rb'\nebpf_exporter_ebpf_program_run_time_seconds\{id="\d+"\} ', text)
            # ... where ebpf_exporter declares it a counter, which promtool's lint refuses
            typed = text.replace(b"_run_time_seconds untyped", b"_run_time_seconds counter")
            check = _promtool(promtool, typed)
            assert check.returncode == 3, check.stdout + check.stderr
            assert check.stderr.decode().splitlines() == [
                'ebpf_exporter_ebpf_program_run_time_seconds counter metrics should have "_total" '
                "suffix"
            ]

            (tmp_path / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: ebpf\n    metrics_path: /custom\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            )
            prom = subprocess.Popen(
                [*enter, str(prom_bin), f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            api = f"http://127.0.0.1:{prom_port}/api/v1"
            wait(f"http://127.0.0.1:{prom_port}/-/ready", prom)
            queries = {
                # raw_tp/sys_enter
                'ebpf_exporter_syscalls_total{comm="tbx-prom",syscall="getppid"}': 7.0,
                # tracepoint/syscalls/sys_enter_getppid and sys_enter_write
                'ebpf_exporter_percpu_summed_total{kind="1"}': 7.0,
                "ebpf_exporter_write_size_exp2_count": 3.0,
                "histogram_quantile(1, ebpf_exporter_write_size_fixed_bucket)": 1000.0,
                # tp_btf/sys_enter
                'ebpf_exporter_btf_syscalls_total{syscall="getppid"}': 7.0,
                # uprobe/libc.so.6:getpid (any tbx* process counts) and perf_event/
                'ebpf_exporter_getpid_calls_total{slot="0"} >= bool 1': 1.0,
                'ebpf_exporter_cpu_samples_total{slot="0"} > bool 0': 1.0,
                # usdt/<binary>:myprov:myprobe
                'sum(ebpf_exporter_usdt_probes_total{a=~"1|2"})': 2.0,
                # xdp/tbexp0
                'ebpf_exporter_xdp_packets_total{interface="tbexp0",protocol="udp",'
                'source="198.18.77.2"}': 3.0,
                # built-in metrics: one program (xdp/tbexp-missing) did not attach
                "count(ebpf_exporter_ebpf_program_attached == 0)": 1.0,
                "count(ebpf_exporter_ebpf_program_attached == 1)": 8.0,
                "count(ebpf_exporter_enabled_configs)": 5.0,
                "count(ebpf_exporter_ebpf_program_run_time_seconds)": 9.0,
                'up{job="ebpf"}': 1.0,
            }
            deadline = time.monotonic() + 60
            results: dict[str, float | None] = {}
            while True:
                for q in queries:
                    body = json.loads(get(f"{api}/query?query={urllib.parse.quote(q)}")[0])
                    assert body["status"] == "success", body
                    res = body["data"]["result"]
                    results[q] = float(res[0]["value"][1]) if res else None
                if results == queries:
                    break
                assert time.monotonic() < deadline, f"Prometheus answered {results}"
                time.sleep(1)
            targets = json.loads(get(f"{api}/targets")[0])["data"]["activeTargets"]
            assert targets[0]["health"] == "up" and targets[0]["lastError"] == ""
            meta = json.loads(
                get(f"{api}/metadata?metric=ebpf_exporter_ebpf_program_run_time_seconds")[0]
            )["data"]
            assert meta["ebpf_exporter_ebpf_program_run_time_seconds"][0]["type"] == "unknown"
        finally:
            if prom is not None:
                prom.terminate()
                prom.wait(timeout=30)
            exporter.send_signal(signal.SIGTERM)
            out, _ = exporter.communicate(timeout=60)
    assert exporter.returncode == 0, out
    assert "detached and stopped" in out
    assert "xdp_nowhere" in out and "tbexp-missing" in out  # the attach failure, logged


@pytest.mark.root
def test_cli_sigint_detaches_and_exits_0(tmp_path):
    import tinybpf

    d = config_dir(tmp_path, "export_basic")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic", f"--web.listen-address=127.0.0.1:{port}",
         "--metrics.total-suffix"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    text = _wait_http(f"http://127.0.0.1:{port}/metrics", proc)
    assert b"ebpf_exporter_ebpf_program_run_time_seconds_total{" in text  # --metrics.total-suffix
    assert b"# TYPE ebpf_exporter_ebpf_program_run_time_seconds_total counter\n" in text
    from helpers.prometheus import binaries

    found = binaries()
    if not isinstance(found, str):  # promtool passes on this output too
        check = _promtool(found[1], text)
        assert check.returncode == 0, check.stdout + check.stderr
    ids = {dict(lb)["id"] for (n, lb) in parse(text) if n == "ebpf_exporter_ebpf_program_info"}
    assert len(ids) == 3
    assert _get(f"http://127.0.0.1:{port}/").startswith(b"<html>")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    loaded = {str(p.id) for p in tinybpf.loaded_programs()}
    assert not ids & loaded


def test_counter_without_total_is_declared_untyped_or_renamed():
    from tinybpf.export.metrics import MetricFamily, render

    fams = [MetricFamily("a_seconds", "h", "counter"), MetricFamily("b_total", "h", "counter")]
    fams[0].add((("id", "1"),), 0.5)
    fams[1].add((), 2.0)
    assert render(fams) == (
        b'# HELP a_seconds h\n# TYPE a_seconds untyped\na_seconds{id="1"} 0.5\n'
        b"# HELP b_total h\n# TYPE b_total counter\nb_total 2\n"
    )
    assert render(fams, total_suffix=True) == (
        b"# HELP a_seconds_total h\n# TYPE a_seconds_total counter\n"
        b'a_seconds_total{id="1"} 0.5\n'
        b"# HELP b_total h\n# TYPE b_total counter\nb_total 2\n"
    )


def test_listen_address_forms():
    from tinybpf.export.server import parse_listen_address

    assert parse_listen_address(":9435") == ("", 9435)
    assert parse_listen_address("127.0.0.1:1") == ("127.0.0.1", 1)
    assert parse_listen_address("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError, match="HOST"):
        parse_listen_address("9435")


@pytest.mark.root
def test_example_timers_config_compiles_and_serves(tmp_path):
    examples = TESTS.parent / "examples" / "export"
    subprocess.run(
        [sys.executable, "-m", "tinybpf", "compile", str(examples / "timers.bpf.c"),
         "-o", f"{tmp_path}/"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (tmp_path / "timers.yaml").write_text((examples / "timers.yaml").read_text())
    with Exporter.from_dir(tmp_path, ["timers"]) as ex:
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.2)
            series = [
                lb for (n, lb) in parse(ex.render()) if n == "ebpf_exporter_timer_starts_total"
            ]
            if series:
                break
            assert time.monotonic() < deadline, "no kernel timer started in 10 s"
    names = [dict(lb)["function"] for lb in series]
    assert all(n and not n.startswith("unknown_addr:") for n in names), names


def _wait_for(ex: Exporter, metric: str, want: float, **labels: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        s = parse(ex.render())
        if s.get((metric, frozenset(labels.items()))) == want:
            return s
        assert time.monotonic() < deadline, f"{metric}{labels} never reached {want}: {s}"
        time.sleep(0.1)


@pytest.mark.root
def test_perf_event_array_counter_and_flush_interval(tmp_path):
    metric = "ebpf_exporter_getppid_events_total"
    (tmp_path / "a").mkdir()
    d = config_dir(tmp_path / "a", "export_perf")
    with Exporter.from_dir(d, ["export_perf"]) as ex:
        run_child("[os.getppid() for _ in range(4)]", comm="tbx-perf")
        _wait_for(ex, metric, 4, comm="tbx-perf", kind="1")
        # a ring buffer map counts the same way
        _wait_for(ex, "ebpf_exporter_getppid_ring_total", 4, comm="tbx-perf", kind="1")
        time.sleep(1.5)  # no flush_interval: the counts stay
        assert value(parse(ex.render()), metric, comm="tbx-perf", kind="1") == 4
    text = (CONFIGS / "export_perf.yaml").read_text()
    text = text.replace(
        "perf_event_array: true\n", "perf_event_array: true\n      flush_interval: 1s\n"
    )
    (tmp_path / "b").mkdir()
    d = config_dir(tmp_path / "b", "export_perf", yaml={"export_perf": text})
    with Exporter.from_dir(d, ["export_perf"]) as ex:
        run_child("[os.getppid() for _ in range(2)]", comm="tbx-flush")
        _wait_for(ex, metric, 2, comm="tbx-flush", kind="1")
        deadline = time.monotonic() + 10
        while (metric, frozenset({("comm", "tbx-flush"), ("kind", "1")})) in parse(ex.render()):
            assert time.monotonic() < deadline, "flush_interval: 1s never flushed"
            time.sleep(0.2)


USDT_YAML = """\
metrics:
  counters:
    - name: usdt_probes_total
      help: myprov:myprobe hits by first argument
      labels:
        - name: a
          size: 8
          decoders:
            - name: uint
"""


def _multiarch_include() -> str | None:
    """/usr/include/<triple>, where <bpf/usdt.bpf.h>'s <asm/errno.h> lives."""
    try:
        triple = subprocess.run(
            ["gcc", "-print-multiarch"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    d = Path("/usr/include") / triple
    return str(d) if triple and (d / "asm" / "errno.h").exists() else None


def _usdt_unavailable_reason() -> str | None:
    from helpers.kernel import gcc_unavailable_reason, uprobe_unavailable_reason

    reason = gcc_unavailable_reason() or uprobe_unavailable_reason()
    if reason:
        return reason
    if not any(Path("/usr/include").glob("**/sys/sdt.h")):
        return "<sys/sdt.h> is missing (install systemtap-sdt-dev)"
    if _multiarch_include() is None:
        return "no multiarch include directory with asm/errno.h for <bpf/usdt.bpf.h>"
    return None


def _usdt_config(d: Path) -> Path:
    """export_usdt.bpf.o + .yaml in ``d`` for a usdt_target built there; its path."""
    from helpers.attach_env import build_c

    binary = build_c("usdt_target.c", d / "usdt_target")
    subprocess.run(
        [sys.executable, "-m", "tinybpf", "compile", str(TESTS / "helpers" / "export_usdt.bpf.c"),
         "-o", str(d / "export_usdt.bpf.o"), "--vmlinux", str(BPF_BUILD / "vmlinux.h"),
         f"--cflags=-I{_multiarch_include()}", f'--cflags=-DUSDT_TARGET="{binary}"'],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (d / "export_usdt.yaml").write_text(USDT_YAML)
    return binary


def _run_usdt_target(binary: Path, n: int) -> None:
    proc = subprocess.Popen(
        [str(binary), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate("go\n", timeout=30)
    assert out == "ready\ndone\n"


@pytest.mark.root
def test_usdt_section(tmp_path):
    reason = _usdt_unavailable_reason()
    if reason:
        pytest.skip(reason)
    binary = _usdt_config(tmp_path)
    with Exporter.from_dir(tmp_path, ["export_usdt"]) as ex:
        _run_usdt_target(binary, 3)
        s = parse(ex.render())
    for a in ("1", "2", "3"):
        assert value(s, "ebpf_exporter_usdt_probes_total", a=a) == 1


@pytest.mark.root
def test_tracing_spans_reach_an_otlp_receiver(tmp_path, monkeypatch):
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    received: list = []

    class Receiver(BaseHTTPRequestHandler):  # an OTLP/HTTP endpoint: POST /v1/traces
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            received.append((self.path, req))
            out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        ex = Exporter.from_dir(config_dir(tmp_path, "export_trace"), ["export_trace"])
        with ex:
            before = time.time_ns()
            pid = run_child("[os.getppid() for _ in range(2)]", comm="tbx-span")
            after = time.time_ns()
            deadline = time.monotonic() + 10
            while sum(s.spans for s in ex.runtimes[0].span_sources) < 2:
                assert time.monotonic() < deadline, "the ring buffer records did not arrive"
                time.sleep(0.05)
        # closing the exporter flushed the batch processor
        spans = [
            (rs.resource, span)
            for path, req in received
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        assert {p for p, _ in received} == {"/v1/traces"}
        assert len(spans) == 2
        for resource, span in spans:
            attrs = {a.key: a.value.string_value for a in resource.attributes}
            assert attrs["service.name"] == "tinybpf-test"
            assert span.name == "getppid"
            assert span.trace_id.hex() == "ab" + "00" * 14 + "01"
            assert span.parent_span_id.hex() == "0000000000001111"
            assert span.span_id.hex() == f"{0x22220000 | (pid & 0xFFFF):016x}"
            assert span.end_time_unix_nano - span.start_time_unix_nano == 1234567
            assert before - 10**9 < span.start_time_unix_nano < after + 10**9
            sattrs = {a.key: a.value.string_value for a in span.attributes}
            assert sattrs == {"comm": "tbx-span", "kind": "getppid"}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.root
def test_label_padding_key(tmp_path):
    # ebpf_exporter's 'padding': the u8 'op' is decoded from 1 byte, 3 bytes skipped
    text = (CONFIGS / "export_basic.yaml").read_text()
    old = """        - name: op
          size: 4
"""
    assert old in text
    text = text.replace(old, "        - name: op\n          size: 1\n          padding: 3\n")
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": text})
    with Exporter.from_dir(d, ["export_basic"]) as ex:
        pid = run_child("os.getppid()", comm="tbx-padding")
        s = parse(ex.render())
    assert value(s, "ebpf_exporter_padded_total", pid=str(pid), op="write") == 1
    bad = text.replace("          padding: 3\n", "          padding: 2\n")
    (tmp_path / "export_basic.yaml").write_text(bad)
    with pytest.raises(ConfigError, match=r"label sizes add up to 7 bytes \(pid:4 \+ op:3\)"):
        Exporter.from_dir(tmp_path, ["export_basic"]).start()


CGROUP_CHILD = """
import os, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
for _ in range(int(sys.argv[2])):
    os.getppid()
"""


@pytest.mark.root
def test_cgroup_id_map_and_cgroup_decoder(tmp_path):
    import uuid

    from helpers.kernel import cgroup2_root

    root = cgroup2_root()
    if root is None:
        pytest.skip("no writable cgroup v2 hierarchy")
    d = config_dir(tmp_path, "export_cgroup")
    ex = Exporter.from_dir(d, ["export_cgroup"], cgroup_interval=0.1)
    cg = root / f"tbx-export-{uuid.uuid4().hex[:8]}"
    other = root / f"tbx-other-{uuid.uuid4().hex[:8]}"
    with ex:
        cg.mkdir()  # made after start: the map learns it on a later pass
        other.mkdir()
        try:
            cid = os.stat(cg).st_ino
            filt = ex.runtimes[0].obj.maps["cgroup_filter"].typed(key=int, value=int)
            deadline = time.monotonic() + 10
            while cid not in filt:
                assert time.monotonic() < deadline, "cgroup_id_map never added the new cgroup"
                time.sleep(0.05)
            assert os.stat(other).st_ino not in filt
            for where, n in ((cg, 3), (other, 5)):
                subprocess.run([sys.executable, "-c", CGROUP_CHILD, str(where), str(n)], check=True)
            s = parse(ex.render())
            series = {dict(lb)["cgroup"]: v for (n, lb), v in s.items()
                      if n == "ebpf_exporter_cgroup_getppid_total"}  # fmt: skip
            assert series == {str(cg): 3}  # the cgroup decoder names the real BPF id
        finally:
            for c in (cg, other):
                for _ in range(50):
                    try:
                        c.rmdir()
                        break
                    except OSError:
                        time.sleep(0.05)
        deadline = time.monotonic() + 10
        while cid in filt:  # removed cgroups leave the map
            assert time.monotonic() < deadline, "cgroup_id_map kept a removed cgroup"
            time.sleep(0.05)


@pytest.mark.root
def test_percpu_histogram_with_a_cpu_label(tmp_path):
    text = (CONFIGS / "export_basic.yaml").read_text()
    old = """      bucket_multiplier: 0.0009765625
      labels:
"""
    assert old in text
    text = text.replace(
        old,
        old
        + "        - name: cpu\n          size: 2\n          decoders:\n            - name: uint\n",
    )
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": text})
    with Exporter.from_dir(d, ["export_basic"]) as ex:
        run_child(WRITES, comm="tbx-pchist")
        s = parse(ex.render())
    from tinybpf import possible_cpus

    counts = {dict(lb)["cpu"]: v for (n, lb), v in s.items()
              if n == "ebpf_exporter_write_size_percpu_count"}  # fmt: skip
    assert set(counts) == {str(c) for c in range(possible_cpus())}
    assert sum(counts.values()) == 3
    inf = {dict(lb)["cpu"]: v for (n, lb), v in s.items()
           if n == "ebpf_exporter_write_size_percpu_bucket" and ("le", "+Inf") in lb}  # fmt: skip
    assert inf == counts


@pytest.mark.root
def test_debug_maps_page(basic):
    run_child("os.getppid()", comm="tbx-debug")
    server = basic.serve("127.0.0.1:0", debug=True)
    try:
        page = _get(f"http://127.0.0.1:{server.port}/maps").decode()
    finally:
        server.close()
    assert "## Config: export_basic" in page and "### Map: syscalls_total" in page
    assert "'tbx-debug', 'getppid'" in page
    nodebug = basic.serve("127.0.0.1:0")
    try:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            _get(f"http://127.0.0.1:{nodebug.port}/maps")
    finally:
        nodebug.close()


@pytest.mark.root
def test_prometheus_client_collector(basic):
    from prometheus_client import CollectorRegistry, generate_latest

    run_child("[os.getppid() for _ in range(2)]\n" + WRITES, comm="tbx-pclient")
    registry = CollectorRegistry()
    registry.register(basic.prometheus_collector())
    text = generate_latest(registry)
    ours = parse(basic.render())
    theirs = parse(text)
    renamed = "ebpf_exporter_ebpf_program_run_time_seconds"
    expected = {
        ((n + "_total" if n == renamed else n), lb): v
        for (n, lb), v in ours.items()
        if not n.startswith("ebpf_exporter_ebpf_program_run_")  # they change between scrapes
    }
    assert {k: v for k, v in theirs.items() if k in expected} == expected
    assert set(expected) <= set(theirs)
    assert value(theirs, "ebpf_exporter_syscalls_total", comm="tbx-pclient", syscall="getppid") == 2


@pytest.mark.root
def test_tp_btf_section(tmp_path):
    from helpers.kernel import tp_btf_unavailable_reason

    reason = tp_btf_unavailable_reason("sys_enter")
    if reason:
        pytest.skip(reason)
    with Exporter.from_dir(config_dir(tmp_path, "export_tpbtf"), ["export_tpbtf"]) as ex:
        run_child("[os.getppid() for _ in range(3)]", comm="tbx-tpbtf")
        s = parse(ex.render())
    assert value(s, "ebpf_exporter_btf_syscalls_total", syscall="getppid") == 3


@pytest.mark.root
def test_a_failing_map_read_does_not_stop_the_scrape(basic, caplog):
    run_child("os.getppid()", comm="tbx-fail")
    import tinybpf

    broken = next(r for r in basic.runtimes[0].readers if r.spec.name == "syscalls_total")
    # the reader reads through a map fd of its own that is then closed: reads raise
    with tinybpf.open_map_by_id(broken.view.id) as base:
        standalone = base.typed(key=bytes, value=int)
    broken.view = standalone
    standalone.close()
    s = parse(basic.render())
    assert not [k for k in s if k[0] == "ebpf_exporter_syscalls_total"]
    assert value(s, "ebpf_exporter_percpu_summed_total", kind="1") == 1
    assert "reading map syscalls_total failed" in caplog.text


@pytest.mark.root
def test_config_check_reports_yaml_and_object_problems_together(tmp_path):
    text = BAD_OBJECT.replace(
        "decoders: [{name: uint}]\n    - name: padded",
        "decoders: [{name: unit}]\n    - name: padded",
    )
    assert "unit" in text
    d = config_dir(tmp_path, "export_basic", yaml={"export_basic": text})
    proc = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic,missing_one", "--config.check"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr
    assert "5 problems" in err, err
    assert "unknown decoder 'unit'" in err and "did you mean 'uint'?" in err  # YAML
    assert "no map named 'no_such_map'" in err and "label sizes add up to 5" in err  # object
    assert "missing_one.yaml" in err and "cannot read config 'missing_one'" in err
    assert "the compiled object of config 'missing_one' is missing" in err


def test_missing_extras_are_named(tmp_path):
    # a Python where PyYAML / the OpenTelemetry SDK cannot be imported
    code = (
        "import sys\n"
        "sys.modules['yaml'] = None\n"
        "sys.modules['opentelemetry'] = None\n"
        "from tinybpf.tools.cli import main\n"
        f"sys.exit(main(['export', '--config.dir={tmp_path}', '--config.names=x']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pip install 'tinybpf[export]'" in proc.stderr and "PyYAML" in proc.stderr
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from tinybpf.export.tracing import Tracing\n"
        "Tracing()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pip install 'tinybpf[otel]'" in proc.stderr
    # the core does not import either
    code = (
        "import sys, tinybpf; tinybpf.libbpf_version(); import tinybpf.tools.cli; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('yaml', 'prometheus_client', 'opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- ebpf_exporter's other flags: --capabilities.keep, --btf.path, --log.no-timestamps ---------

CAP_BPF, CAP_PERFMON = 39, 38


def _caps(pid: int) -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of every thread of ``pid``, which must agree."""
    seen: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended since the listing (a server's request thread)
        caps = {ln[:6]: int(ln.split()[1], 16) for ln in status.splitlines() if ln[:3] == "Cap"}
        assert not seen or caps == seen, f"thread {task.name} has {caps}, another {seen}"
        seen = caps
    return seen


def _start_cli(d: Path, names: str, *flags: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         f"--config.names={names}", f"--web.listen-address=127.0.0.1:{port}", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/metrics"


def _stop_cli(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


@pytest.mark.root
def test_capabilities_keep_drops_after_attach_and_scrapes_go_on(tmp_path):
    from helpers.kernel import uprobe_unavailable_reason

    reason = uprobe_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import ctypes.util

    if ctypes.util.find_library("cap") is None:
        pytest.skip("libcap (libcap.so.2) is not installed")
    before = _caps(os.getpid())
    if not before["CapEff"] >> CAP_BPF & 1 or not before["CapEff"] >> CAP_PERFMON & 1:
        pytest.skip("this process lacks CAP_BPF or CAP_PERFMON to drop")
    examples = TESTS.parent / "examples" / "export"
    subprocess.run(
        [sys.executable, "-m", "tinybpf", "compile", str(examples / "timers.bpf.c"),
         "-o", f"{tmp_path}/"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (tmp_path / "timers.yaml").write_text((examples / "timers.yaml").read_text())
    # export_perf: perf_event_array buffers; export_cgroup: a cgroup_id_map thread
    d = config_dir(tmp_path, "export_basic", "export_attach", "export_perf", "export_cgroup")
    names = "export_basic,export_attach,export_perf,export_cgroup,timers"

    # a list: cap_bpf and cap_perfmon stay permitted and effective, nothing else
    proc, url = _start_cli(d, names, "--capabilities.keep=cap_bpf,CAP_PERFMON")
    try:
        _wait_http(url, proc)
        caps = _caps(proc.pid)
        assert caps["CapEff"] == caps["CapPrm"] == (1 << CAP_BPF) | (1 << CAP_PERFMON), caps
        assert caps["CapInh"] == caps["CapAmb"] == 0
        run_child("[os.getppid() for _ in range(4)]\nos.getpid()", comm="tbx-caps")
        s = parse(_get(url))
        assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-caps", syscall="getppid") == 4
        assert value(s, "ebpf_exporter_getpid_calls_total", slot="0") >= 1
        # the perf event array, read by a thread started after the drop
        assert sum(v for (n, _), v in s.items() if n == "ebpf_exporter_getppid_events_total")
        # kallsyms was read before cap_syslog went: kernel timer functions have names
        timers = [dict(lb)["function"] for (n, lb) in s if n == "ebpf_exporter_timer_starts_total"]
        assert timers and not any(f.startswith("unknown_addr:") for f in timers), timers
    finally:
        out = _stop_cli(proc)
    assert "dropped capabilities" in out and "keep their capabilities" not in out, out

    # none: no capability left, and the maps are still read
    proc, url = _start_cli(d, "export_basic", "--capabilities.keep=none", "--log.no-timestamps")
    try:
        _wait_http(url, proc)
        caps = _caps(proc.pid)
        assert caps["CapEff"] == caps["CapPrm"] == caps["CapInh"] == caps["CapAmb"] == 0, caps
        run_child("[os.getppid() for _ in range(3)]", comm="tbx-nocaps")
        s = parse(_get(url))
        assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-nocaps", syscall="getppid") == 3
        assert len([n for (n, _) in s if n == "ebpf_exporter_ebpf_program_run_count_total"]) == 3
    finally:
        out = _stop_cli(proc)
    first = out.splitlines()[0]
    assert first.startswith("INFO "), first  # --log.no-timestamps

    # all (the default): unchanged
    proc, url = _start_cli(d, "export_basic")
    try:
        _wait_http(url, proc)
        assert _caps(proc.pid)["CapEff"] == before["CapEff"]
    finally:
        _stop_cli(proc)


def test_capabilities_keep_unknown_name_is_refused(tmp_path):
    import ctypes.util

    if ctypes.util.find_library("cap") is None:
        pytest.skip("libcap (libcap.so.2) is not installed")
    from tinybpf.export.capabilities import parse_keep

    assert parse_keep("all") is None and parse_keep("none") == []
    assert parse_keep("cap_bpf, CAP_SYSLOG") == ["cap_bpf", "cap_syslog"]
    for bad in ("cap_nope", "bpf", ","):
        with pytest.raises(ValueError, match=r"--capabilities\.keep"):
            parse_keep(bad)
    got = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={tmp_path}",
         "--config.names=x", "--capabilities.keep=cap_bpf,cap_nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert got.returncode == 1
    assert "unknown capability 'cap_nope'" in got.stderr


@pytest.mark.root
def test_btf_path_is_used_for_co_re(tmp_path):
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        pytest.skip(f"kernel has no BTF ({vmlinux} is missing)")
    btf = tmp_path / "vmlinux.btf"
    btf.write_bytes(vmlinux.read_bytes())
    (tmp_path / "cfg").mkdir()
    d = config_dir(tmp_path / "cfg", "export_basic")
    # a copy of this kernel's BTF: loads, relocates, counts
    with Exporter.from_dir(d, ["export_basic"], btf_path=btf) as ex:
        run_child("[os.getppid() for _ in range(2)]", comm="tbx-btf")
        s = parse(ex.render())
    assert value(s, "ebpf_exporter_syscalls_total", comm="tbx-btf", syscall="getppid") == 2
    # BTF without the kernel's types (another object's): CO-RE relocation fails on it
    other = BPF_BUILD / "export_tpbtf.bpf.o"
    with pytest.raises(OSError, match=r"bpf_raw_tracepoint_args"):
        Exporter.from_dir(d, ["export_basic"], btf_path=other).start()
    # not BTF at all: refused naming the file
    with pytest.raises(OSError, match=r"btf_custom_path '/etc/hostname' refused"):
        Exporter.from_dir(d, ["export_basic"], btf_path="/etc/hostname").start()
    # the command: the flag reaches the load; a missing file is named
    proc, url = _start_cli(d, "export_basic", f"--btf.path={btf}")
    try:
        _wait_http(url, proc)
    finally:
        _stop_cli(proc)
    got = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic", f"--btf.path={tmp_path / 'missing'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert got.returncode == 1 and "--btf.path" in got.stderr and "missing" in got.stderr
    assert "Traceback" not in got.stderr
    got = subprocess.run(
        [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
         "--config.names=export_basic", f"--btf.path={other}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert got.returncode == 1 and "bpf_raw_tracepoint_args" in got.stderr, got.stderr
    assert "Traceback" not in got.stderr


@pytest.mark.root
def test_listen_on_a_socket_passed_by_systemd_activation(tmp_path):
    d = config_dir(tmp_path, "export_basic")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # as systemd does it: the socket at fd 3, LISTEN_FDS=1 and LISTEN_PID of the process
    script = f'exec 3<&{listener.fileno()}; export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"'
    cmd = [sys.executable, "-m", "tinybpf", "export", f"--config.dir={d}",
           "--config.names=export_basic", "--web.listen-address=fd://0"]  # fmt: skip
    proc = subprocess.Popen(
        ["bash", "-c", script, "bash", *cmd],
        pass_fds=(listener.fileno(),),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    listener.close()  # the exporter holds it now
    try:
        text = _wait_http(f"http://127.0.0.1:{port}/metrics", proc)
        assert b"ebpf_exporter_enabled_configs" in text
    finally:
        _stop_cli(proc)
    # without activation, or a bad address: one clear error, exit status 1
    for address, msg in (
        ("fd://0", "no sockets passed by socket activation"),
        ("fd://x", "fd://N takes a number"),
        ("9435", "must be [HOST]:PORT"),
    ):
        got = subprocess.run(
            [*cmd[:-1], f"--web.listen-address={address}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert got.returncode == 1 and msg in got.stderr, got.stderr
        assert "Traceback" not in got.stderr
