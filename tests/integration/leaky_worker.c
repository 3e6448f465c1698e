/* SPDX-License-Identifier: ISC */
/* A pme-worker stand-in that leaks a descriptor into the real worker. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * Installed beside a copy of pmed as "pme-worker", it opens /etc/passwd
 * without close-on-exec and executes "pme-worker.real" from the same
 * directory with the same arguments: the real worker must notice the
 * inherited descriptor and refuse to run.
 */
int
main(int argc, char **argv)
{
	char path[PATH_MAX];
	ssize_t n;
	char *slash;

	(void)argc;
	if (open("/etc/passwd", O_RDONLY) < 0)
		return 126;
	n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	if (n <= 0)
		return 126;
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL)
		return 126;
	strcpy(slash + 1, "pme-worker.real");
	execv(path, argv);
	perror(path);
	return 127;
}
