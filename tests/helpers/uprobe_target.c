/* Target of the uprobe tests: calls tinybpf_uprobe_target(i) for i in 1..N (N = argv[1])
 * and prints the sum of the results. Built by a pytest fixture with gcc. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int tinybpf_uprobe_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 2 + 1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	long sum = 0;

	for (int i = 1; i <= n; i++)
		sum += tinybpf_uprobe_target(i);
	printf("%ld\n", sum);
	return 0;
}
