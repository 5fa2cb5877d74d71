// SPDX-License-Identifier: GPL-2.0
// 48 socket filters with long names: more name bytes than tinybpf's open call returns in
// its fixed buffer (TINYBPF_INDEX_CAP), so the object is indexed by a second call.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define PROG(n)                                                          \
	SEC("socket") int a_socket_filter_with_a_long_name_##n(void *ctx) \
	{                                                                \
		return 0;                                                \
	}
#define TEN(d) PROG(d##0) PROG(d##1) PROG(d##2) PROG(d##3) PROG(d##4) \
	PROG(d##5) PROG(d##6) PROG(d##7) PROG(d##8) PROG(d##9)

TEN(1)
TEN(2)
TEN(3)
TEN(4)
PROG(50) PROG(51) PROG(52) PROG(53) PROG(54) PROG(55) PROG(56) PROG(57)
