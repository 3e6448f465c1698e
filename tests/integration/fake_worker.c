/* SPDX-License-Identifier: ISC */
/* A pme-worker stand-in that lets a test script play a hostile worker. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * Installed beside a copy of pmed as "pme-worker", with the real worker
 * beside it as "pme-worker.real" and hostile_worker.py.  The spawner runs
 * it as "pme-worker SERVICE" with the socket on fd 3: a service whose name
 * starts with "evil_" gets the script, which speaks the protocol badly in
 * the way the rest of the name says; any other service gets the real
 * worker.
 */
int
main(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		return 126;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 126;
	*slash = '\0';
	if (argc == 2 && strncmp(argv[1], "evil_", 5) == 0) {
		snprintf(path, sizeof(path), "%s/hostile_worker.py", dir);
		execl("/usr/bin/python3", "python3", path, argv[1], (char *)NULL);
	} else {
		snprintf(path, sizeof(path), "%s/pme-worker.real", dir);
		execv(path, argv);
	}
	perror(path);
	return 127;
}
