/* Runs one command and prints "ELAPSED_NS MAXRSS_KIB CPU_US": wall time from fork to reaped, the
 * peak RSS the kernel recorded for it, and its CPU time, user + system, with that of its waited-for
 * descendants (wait4): less moved by other load on the machine than the wall time. A small C
 * parent, because the kernel counts a child's memory from before exec too: spawned from Python,
 * every command would start at the interpreter's 10-20 MiB. stdin, stdout and stderr go to
 * /dev/null; a non-zero exit is exit 1.
 * Usage: measure CMD [ARG...] */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int null = open("/dev/null", O_RDWR);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) != pid)
        return 2;
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    long long cpu_us = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL + usage.ru_utime.tv_usec +
                       usage.ru_stime.tv_usec;
    printf("%lld %ld %lld\n", ns, usage.ru_maxrss, cpu_us);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
