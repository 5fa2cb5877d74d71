/* Target of the symbolizer tests: prints the run-time addresses of a function and of a
 * data object, then waits until its stdin is closed so that the test can read its
 * /proc/PID/maps. Built by the tests with gcc (PIE, non-PIE, stripped...). */
#include <stdio.h>

int tinybpf_target_obj[64] = { 1 };

__attribute__((noinline)) int tinybpf_target_fn(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3 + tinybpf_target_obj[x & 63];
}

int main(void)
{
	printf("%p %p %d\n", (void *)tinybpf_target_fn, (void *)tinybpf_target_obj,
	       tinybpf_target_fn(1));
	fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}
