/* usdt_app: a pretend request handler with a USDT probe per request, for examples/usdt.py.
 *
 * Build: gcc -O2 -o usdt_app examples/usdt_app.c   (needs <sys/sdt.h>: systemtap-sdt-dev)
 *
 *   usdt_app N    prints "ready", waits for a line on stdin (a tracer attaches meanwhile),
 *                 then handles N requests, firing tinybpf_app:request(id, latency_us, path)
 *                 for each, and prints "done".
 *
 * The probe costs a single nop in the binary when nothing is attached; its location and
 * the way to find its arguments are in the ELF note section .note.stapsdt (readelf -n).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

static const char *const paths[] = { "/index.html", "/api/users", "/static/app.js" };

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int id = 1; id <= n; id++) {
		long latency_us = 100L * id;
		const char *path = paths[(id - 1) % 3];

		DTRACE_PROBE3(tinybpf_app, request, id, latency_us, path);
	}
	printf("done\n");
	return 0;
}
