// SPDX-License-Identifier: MIT
// taskdump: a task iterator. Reading the iterator link runs the program once per task,
// and what it prints with BPF_SEQ_PRINTF is the text read: one line per process (or per
// thread): pid, tid, parent pid, uid, thread count, command.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* configured from Python before load: list every thread, not only thread-group leaders */
const volatile bool show_threads = false;

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task) /* the end of the iteration */
		return 0;
	if (!show_threads && task->pid != task->tgid)
		return 0;
	BPF_SEQ_PRINTF(seq, "%7d %7d %7d %5u %7d %s\n", task->tgid, task->pid,
		       task->real_parent->tgid, task->cred->uid.val, task->signal->nr_threads,
		       task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
