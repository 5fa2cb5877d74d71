/* Target of the uprobe tests in test_attach.py, built by a pytest fixture with gcc.
 *
 *   attach_target N    calls tinybpf_probe_target(i) for i in 1..N and prints the sum of
 *                      the results, then calls tinybpf_fn_one() once, tinybpf_fn_two()
 *                      twice and tinybpf_fn_three() three times (the uprobe_multi targets).
 */
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

NOINLINE int tinybpf_probe_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3 + 1;
}

NOINLINE int tinybpf_fn_one(void)
{
	__asm__ volatile("" ::: "memory");
	return 1;
}

NOINLINE int tinybpf_fn_two(void)
{
	__asm__ volatile("" ::: "memory");
	return 2;
}

NOINLINE int tinybpf_fn_three(void)
{
	__asm__ volatile("" ::: "memory");
	return 3;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	long sum = 0;

	for (int i = 1; i <= n; i++)
		sum += tinybpf_probe_target(i);
	sum += tinybpf_fn_one();
	for (int i = 0; i < 2; i++)
		sum += tinybpf_fn_two();
	for (int i = 0; i < 3; i++)
		sum += tinybpf_fn_three();
	printf("%ld\n", sum);
	return 0;
}
