// SPDX-License-Identifier: GPL-2.0
// Feature probes (tests/helpers/kernel.py): the smallest program of each kind whose support
// differs between kernels and builds. The probe loads one of them (autoload off for the
// others), with the attach target it asks about, and reports the kernel's answer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe.multi")
int probe_kprobe_multi(void *ctx)
{
	return 0;
}

SEC("fentry")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("fmod_ret")
int BPF_PROG(probe_fmod_ret)
{
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file)
{
	return 0;
}

SEC("uprobe.multi")
int probe_uprobe_multi(void *ctx)
{
	return 0;
}

SEC("tcx/ingress")
int probe_tcx(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

SEC("tp_btf")
int BPF_PROG(probe_tp_btf)
{
	return 0;
}
