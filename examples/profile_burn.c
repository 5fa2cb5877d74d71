/* profile_burn: burns CPU in a known C function, for examples/profile.py.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -o profile_burn examples/profile_burn.c
 *
 *   profile_burn SECONDS   prints "ready", waits for a line on stdin (the profiler attaches
 *                          meanwhile), spins in burn_cpu() for SECONDS, prints "done", then
 *                          waits for stdin to close so that its memory map stays readable
 *                          while the profiler symbolizes the stacks it sampled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long burn_cpu(double seconds)
{
	volatile unsigned long x = 0;
	double end = now() + seconds;

	while (now() < end)
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}

__attribute__((noinline)) unsigned long run_workload(double seconds)
{
	return burn_cpu(seconds) + 1;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	printf("done %lu\n", run_workload(seconds) & 1);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
