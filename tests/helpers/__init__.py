"""Helpers of the real-kernel tests: feature probes, cgroups, network namespaces, ELF offsets."""
