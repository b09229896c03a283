/*
 * metrics_process.c: batchnormd_build_info and the process_* families for
 * GET /metrics (metrics.h), named as Prometheus's client libraries name
 * them so that dashboards made for any exporter read them unchanged.
 *
 * Everything is read afresh at each scrape from getrusage(), getrlimit()
 * and /proc/self; nothing is kept between scrapes.
 * process_start_time_seconds is written by metrics.c, which records it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sqlite3.h>

#include "metrics.h"

/* Append s as the inside of a label value: backslash, quote and newline escaped. */
static void label_value(struct bn_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			bn_buf_puts(out, "\\\\");
		else if (*s == '"')
			bn_buf_puts(out, "\\\"");
		else if (*s == '\n')
			bn_buf_puts(out, "\\n");
		else
			bn_buf_append(out, s, 1);
	}
}

static void write_build_info(struct bn_buf *out, const char *daemon_version)
{
	const char *mhd = MHD_get_version();

	bn_buf_puts(out, "# HELP batchnormd_build_info The daemon's version and those of the libraries it runs on.\n"
		"# TYPE batchnormd_build_info gauge\nbatchnormd_build_info{version=\"");
	label_value(out, daemon_version ? daemon_version : "unknown");
	bn_buf_puts(out, "\",sqlite=\"");
	label_value(out, sqlite3_libversion());
	bn_buf_puts(out, "\",microhttpd=\"");
	label_value(out, mhd ? mhd : "unknown");
	bn_buf_puts(out, "\"} 1\n");
}

/* One gauge family of a single unlabelled sample. */
static void gauge(struct bn_buf *out, const char *name, const char *help, double v)
{
	bn_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

/*
 * Virtual and resident size from /proc/self/statm, whose first two fields
 * are those sizes in pages. 0, or a negative errno with nothing written.
 */
static int read_statm(uint64_t *ret_virtual, uint64_t *ret_resident)
{
	char text[256], *p, *end;
	unsigned long long pages[2];
	long page = sysconf(_SC_PAGESIZE);
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0 || page <= 0)
		return -EIO;
	text[n] = '\0';
	p = text;
	for (int i = 0; i < 2; i++) {
		errno = 0;
		pages[i] = strtoull(p, &end, 10);
		if (errno || end == p || (*end != ' ' && *end != '\n'))
			return -EIO;
		p = end;
	}
	*ret_virtual = (uint64_t)pages[0] * (uint64_t)page;
	*ret_resident = (uint64_t)pages[1] * (uint64_t)page;
	return 0;
}

/* Descriptors open now, from /proc/self/fd, not counting the one reading it. */
static int count_fds(uint64_t *ret_count)
{
	DIR *dir = opendir("/proc/self/fd");
	uint64_t count = 0;
	struct dirent *e;
	int self;

	if (!dir)
		return -errno;
	self = dirfd(dir);
	while ((e = readdir(dir))) {
		char *end;
		long fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = strtol(e->d_name, &end, 10);
		if (*end == '\0' && fd != self)
			count++;
	}
	closedir(dir);
	*ret_count = count;
	return 0;
}

void bnd_metrics_process_write(struct bn_buf *out, const char *daemon_version)
{
	struct rusage ru;
	struct rlimit rl;
	uint64_t virt = 0, res = 0, fds = 0;

	write_build_info(out, daemon_version);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		bn_buf_printf(out, "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n"
			"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
			(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	if (read_statm(&virt, &res) == 0) {
		gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", (double)res);
		gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double)virt);
	}
	if (count_fds(&fds) == 0)
		gauge(out, "process_open_fds", "Number of open file descriptors.", (double)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			bn_buf_puts(out, "# HELP process_max_fds Maximum number of open file descriptors.\n"
				"# TYPE process_max_fds gauge\nprocess_max_fds +Inf\n");
		else
			gauge(out, "process_max_fds", "Maximum number of open file descriptors.", (double)rl.rlim_cur);
	}
}
