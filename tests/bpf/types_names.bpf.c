// SPDX-License-Identifier: GPL-2.0
/*
 * Names that are fine in C but not in Python, for tests/test_codegen.py: Python keywords,
 * names Python mangles in a class body (__x), names of builtins and modules the generated
 * code uses, and a struct whose class name would be the wrapper's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct keywords {
	__u32 from;
	__u32 lambda;
	__u16 None;
	__u8 in : 4;
	__u8 is : 4;
	__u8 __flags : 3;
	__u32 __reserved;
	__u32 bytes;
	char str[4];
	__u32 ctypes;
};

struct types_names_object {
	__u32 x;
};

enum py_words {
	True = 1,
	False = 0,
	None_value = 5,
	_private_value = 2,
	value = 3,
};

/* globals named like keywords, modules, builtins, or mangled names */
__u32 pass = 0;
__u64 yield = 0;
__u32 ctypes = 0;
__u32 bytes = 0;
__u32 __secret = 0;
enum py_words word = value;
struct keywords kw;
struct types_names_object clash;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct keywords);
} lambda SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} globals SEC(".maps");

const volatile __u32 target_pid = 0;

SEC("tp/syscalls/sys_enter_getpid")
int load(void *ctx)
{
	__u32 zero = 0, seven = 7;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	pass = 7;
	yield += 1;
	ctypes = 3;
	bytes = 4;
	__secret = 5;
	kw.from = 1;
	kw.lambda = 2;
	kw.in = 3;
	kw.is = 4;
	kw.__flags = 5;
	kw.bytes = 6;
	kw.str[0] = 'o';
	kw.str[1] = 'k';
	bpf_map_update_elem(&globals, &zero, &seven, BPF_ANY);
	bpf_map_update_elem(&lambda, &zero, &kw, BPF_ANY);
	return 0;
}
