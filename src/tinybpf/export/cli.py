"""``tinybpf export``: ebpf_exporter's command line over tinybpf."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

__all__ = ["add_parser", "run"]

log = logging.getLogger(__package__)


def add_parser(sub: Any) -> None:
    sp = sub.add_parser(
        "export",
        help="serve Prometheus metrics from BPF maps (ebpf_exporter's configs)",
        description="Load <dir>/<name>.bpf.o for each config name, attach its programs by "
        "section and serve the maps named in <dir>/<name>.yaml (ebpf_exporter's schema) as "
        "Prometheus metrics.",
    )
    sp.add_argument("--config.dir", dest="config_dir", default=".", help="config directory")
    sp.add_argument(
        "--config.names",
        dest="config_names",
        default="",
        help="comma separated names of configs to load",
    )
    sp.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9435",
        help="address to listen on (default :9435), or fd://0 for a socket passed by "
        "systemd socket activation",
    )
    sp.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path under which to expose metrics (default /metrics)",
    )
    sp.add_argument(
        "--config.strict",
        dest="config_strict",
        action="store_true",
        help="fail when a program does not attach",
    )
    sp.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="check the configs against their objects, print every problem and exit",
    )
    sp.add_argument("--debug", action="store_true", help="debug log and the /maps page")
    sp.add_argument(
        "--scrape.timeout",
        dest="scrape_timeout",
        type=float,
        default=0.0,
        help="seconds a scrape may spend reading maps (0: no limit)",
    )
    sp.add_argument(
        "--metrics.max-series",
        dest="max_series",
        type=int,
        default=0,
        help="series kept per metric, the rest dropped and counted (0: no limit)",
    )
    sp.add_argument(
        "--labels.cache-size",
        dest="label_cache_size",
        type=int,
        default=100_000,
        help="decoded keys remembered per metric (default 100000)",
    )
    sp.add_argument(
        "--metrics.total-suffix",
        dest="total_suffix",
        action="store_true",
        help="name counters that lack _total (ebpf_exporter's "
        "ebpf_exporter_ebpf_program_run_time_seconds) <name>_total; by default they keep "
        "ebpf_exporter's name and are declared untyped, which promtool also accepts",
    )
    sp.add_argument(
        "--bpf.stats",
        dest="bpf_stats",
        action="store_true",
        help="turn on the kernel's BPF run-time statistics while running",
    )
    sp.add_argument(
        "--capabilities.keep",
        dest="capabilities_keep",
        default="all",
        help="capabilities kept after the programs are attached: 'all' (default), 'none' "
        "or a comma separated list such as cap_bpf,cap_perfmon (needs libcap)",
    )
    sp.add_argument(
        "--btf.path",
        dest="btf_path",
        default=None,
        help="BTF file for CO-RE relocation instead of /sys/kernel/btf/vmlinux "
        "(for kernels without it; e.g. from btfhub)",
    )
    sp.add_argument(
        "--log.no-timestamps",
        dest="log_no_timestamps",
        action="store_true",
        help="leave timestamps out of the log (e.g. under systemd, whose journal has them)",
    )
    sp.set_defaults(func=run)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def run(args: argparse.Namespace) -> int:
    try:
        from .config import ConfigError
        from .exporter import Exporter
    except ImportError as e:  # pragma: no cover - the extra is missing
        print(f"Error: {e}", file=sys.stderr)
        return 1

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format=("" if args.log_no_timestamps else "%(asctime)s ")
        + "%(levelname)s %(name)s: %(message)s",
    )
    if not args.listen_address.startswith("fd://"):
        from .server import parse_listen_address

        try:
            parse_listen_address(args.listen_address)
        except ValueError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
    keep: list[str] | None = None
    if not args.config_check:
        try:
            from .capabilities import parse_keep

            keep = parse_keep(args.capabilities_keep)
        except (ValueError, OSError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
    if args.btf_path is not None:
        from ..btf import Btf

        try:
            Btf.from_file(args.btf_path).close()
        except OSError as e:
            print(f"Error: --btf.path {args.btf_path}: {e}", file=sys.stderr)
            return 1
    if args.config_check:  # every problem, of the YAML and against the objects, at once
        try:
            from .config import read_configs

            configs, issues = read_configs(args.config_dir, _names(args.config_names))
            issues = issues + Exporter(configs).check()
        except ImportError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        if issues:
            print(f"Error: {ConfigError(issues)}", file=sys.stderr)
            return 1
        print(f"configs ok: {', '.join(c.name for c in configs)}")
        return 0
    try:
        exporter = Exporter.from_dir(
            args.config_dir,
            _names(args.config_names),
            strict=args.config_strict,
            scrape_timeout=args.scrape_timeout,
            max_series=args.max_series,
            label_cache_size=args.label_cache_size,
            total_suffix=args.total_suffix,
            btf_path=args.btf_path,
            keep_capabilities=keep,
        )
    except ImportError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s, detaching", signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stats = None
    server = None
    try:
        if args.bpf_stats:
            from .. import enable_stats

            stats = enable_stats()
        try:
            exporter.start()
        except (ConfigError, OSError, ValueError) as e:  # a config, load or attach failure
            print(f"Error: {e}", file=sys.stderr)
            return 1
        from .server import MetricsServer

        try:
            server = MetricsServer(
                exporter, args.listen_address, args.telemetry_path, debug=args.debug
            ).start()
        except (ValueError, OSError) as e:  # a bad address, one in use, no passed socket
            print(f"Error: {e}", file=sys.stderr)
            return 1
        log.info(
            "serving configs %s on %s%s",
            ", ".join(c.name for c in exporter.configs),
            args.listen_address,
            args.telemetry_path,
        )
        while not stop.wait(0.5):
            pass
    finally:
        if server is not None:
            server.close()
        exporter.close()
        if stats is not None:
            stats.close()
        for s, h in old.items():
            signal.signal(s, h)
    log.info("detached and stopped")
    return 0
