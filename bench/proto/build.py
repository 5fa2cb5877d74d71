"""Build bench/build/_bench_proto (cffi, API mode) from bench/proto/proto.c and libbpf.a.

python bench/proto/build.py REPO_ROOT
"""

import sys
from pathlib import Path

import cffi

CDEF = """
struct ring_buffer;
struct perf_buffer;
struct proto_drain {
    char *buf;
    size_t cap;
    size_t len;
    size_t esize;
    int bad;
    unsigned long long lost;
};
struct ring_buffer *proto_ring_new(int fd, struct proto_drain *d);
struct ring_buffer *proto_ring_new_noop(int fd);
int proto_ring_drain(struct ring_buffer *rb, struct proto_drain *d);
int proto_ring_skip(struct ring_buffer *rb);
void proto_ring_free(struct ring_buffer *rb);
struct perf_buffer *proto_perf_new(int fd, size_t pages, int period, struct proto_drain *d);
int proto_perf_drain(struct perf_buffer *pb, struct proto_drain *d);
void proto_perf_free(struct perf_buffer *pb);
"""


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    libbpf = root / "build" / "libbpf-1.7.0"
    out = root / "bench" / "build"
    out.mkdir(parents=True, exist_ok=True)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        "_bench_proto",
        (root / "bench" / "proto" / "proto.c").read_text(),
        include_dirs=[str(libbpf / "include")],
        extra_objects=[str(libbpf / "obj" / "libbpf.a")],
        libraries=["elf", "z"],
        extra_compile_args=["-O2"],
    )
    ffi.compile(tmpdir=str(out / "proto-tmp"), target=str(out / "_bench_proto.*"))


if __name__ == "__main__":
    main()
