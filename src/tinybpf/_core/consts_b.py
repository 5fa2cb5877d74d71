"""Kernel and libbpf constants the attach and link code needs, as plain ints."""

from __future__ import annotations

from ._binding import lib

__all__ = [
    "BPF_F_AFTER",
    "BPF_F_BEFORE",
    "BPF_TC_EGRESS",
    "BPF_TC_INGRESS",
    "SO_ATTACH_BPF",
    "SO_DETACH_BPF",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_HW_MODE",
    "XDP_FLAGS_REPLACE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_FLAGS_UPDATE_IF_NOEXIST",
]

SO_ATTACH_BPF: int = int(lib.SO_ATTACH_BPF)  # not exported by the socket module
SO_DETACH_BPF: int = int(lib.SO_DETACH_BPF)
BPF_F_BEFORE: int = int(lib.BPF_F_BEFORE)
BPF_F_AFTER: int = int(lib.BPF_F_AFTER)
BPF_TC_INGRESS: int = int(lib.BPF_TC_INGRESS)
BPF_TC_EGRESS: int = int(lib.BPF_TC_EGRESS)
XDP_FLAGS_SKB_MODE: int = int(lib.XDP_FLAGS_SKB_MODE)
XDP_FLAGS_DRV_MODE: int = int(lib.XDP_FLAGS_DRV_MODE)
XDP_FLAGS_HW_MODE: int = int(lib.XDP_FLAGS_HW_MODE)
XDP_FLAGS_UPDATE_IF_NOEXIST: int = int(lib.XDP_FLAGS_UPDATE_IF_NOEXIST)
XDP_FLAGS_REPLACE: int = int(lib.XDP_FLAGS_REPLACE)
