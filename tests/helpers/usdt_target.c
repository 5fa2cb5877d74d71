/* Target of the USDT tests, built by a pytest fixture with gcc (needs <sys/sdt.h>,
 * Debian's systemtap-sdt-dev).
 *
 *   usdt_target N    prints "ready", waits for a line on stdin (the test attaches to this
 *                    pid meanwhile), then fires myprov:myprobe(i, i * 1000) for i in 1..N
 *                    and prints "done".
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 1; i <= n; i++) {
		long b = (long)i * 1000;

		DTRACE_PROBE2(myprov, myprobe, i, b);
	}
	printf("done\n");
	return 0;
}
