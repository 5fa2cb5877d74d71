// SPDX-License-Identifier: GPL-2.0
// Types for the BTF tests: plain struct, bitfields, arrays, enum, union, a typedef'd
// anonymous struct, a signed typedef and nested structs. The unused globals anchor every
// type in the object's BTF (they live in btf_typ.bss).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct plain {
	__u32 a;
	__u16 b;
	__u64 c;
};

struct flags {
	__u32 kind : 4;
	__u32 level : 3;
	__u32 on : 1;
	__u32 rest : 24;
	__u16 after;
};

struct with_array {
	__u32 id;
	char name[16];
	__u64 slots[3];
};

enum color {
	RED = 0,
	GREEN = 5,
	BLUE = 10,
};

union number {
	__u32 u;
	__s32 s;
	__u64 wide;
};

typedef struct {
	__u32 x;
	__u16 y;
} anon_t;

typedef __s32 my_signed_t;

/* b is at offset 1: a Python struct with a u16 there puts it at 2 */
struct small {
	__u8 a;
	__u8 b;
	__u16 c;
	__u32 d;
};

struct nested {
	struct plain inner;
	union number num;
	enum color col;
	my_signed_t delta;
	pid_t pid;
	float ratio;
};

struct plain _plain_btf __attribute__((unused));
struct flags _flags_btf __attribute__((unused));
struct with_array _with_array_btf __attribute__((unused));
union number _number_btf __attribute__((unused));
anon_t _anon_btf __attribute__((unused));
struct nested _nested_btf __attribute__((unused));
struct small _small_btf __attribute__((unused));
enum color _color_btf __attribute__((unused));
my_signed_t _signed_btf __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, my_signed_t);
	__type(value, struct plain);
} plain_map SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int btf_prog(void *ctx)
{
	return 0;
}
