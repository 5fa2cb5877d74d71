/* tinybpf's C shim: the libbpf version guard, and small helpers (free, setns).
 *
 * The first of the shim_*.c files that ffi_build/build_ffi.py compiles into the extension
 * as one unit (in the order of its SHIM_FILES), after cffi's declarations of the extern
 * "Python" sinks; the includes here serve them all. Everything is static: the extension
 * exports nothing but its PyInit_ symbol.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <bpf/btf.h>

#if !defined(TINYBPF_PIN_MAJOR) || !defined(TINYBPF_PIN_MINOR)
#error "build_ffi.py must define the pinned libbpf version"
#endif
#if LIBBPF_MAJOR_VERSION != TINYBPF_PIN_MAJOR || LIBBPF_MINOR_VERSION != TINYBPF_PIN_MINOR
#error "libbpf headers do not match the version pinned in .libbpf-version"
#endif

/* The full pinned version (libbpf's headers only carry major.minor). */
static const char *tinybpf_libbpf_release(void)
{
	return TINYBPF_PIN_VERSION;
}

static void tinybpf_free(void *p)
{
	free(p);
}

/* ---- setns(2) for the calling thread (os.setns needs Python 3.12) -------------------- */

#include <sched.h>

static int tinybpf_setns(int fd, int nstype)
{
	return setns(fd, nstype) ? -errno : 0;
}

/* The type of namespace an nsfs fd refers to (a CLONE_NEW* value), or -errno: ENOTTY for
 * a file that is no namespace. */
#include <sys/ioctl.h>
#include <linux/nsfs.h>

static int tinybpf_ns_type(int fd)
{
	int ret = ioctl(fd, NS_GET_NSTYPE);

	return ret < 0 ? -errno : ret;
}
