"""docs/kernels.md from the results of ``make kernels`` (one result.json per kernel)."""

from __future__ import annotations

from pathlib import Path

# 5.10's CONFIG_LSM with bpf appended: booted as the "5.10+bpflsm" variant
BPF_LSM_LIST = "lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf"


def write(results: Path, doc: Path) -> None:
    pass
