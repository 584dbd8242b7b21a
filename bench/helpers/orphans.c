/* Child for the reaping benchmark: makes N orphans at once and times how long PID 1 takes to reap
 * them. A middle process forks N children, each blocked on a pipe, and exits: the N are
 * re-parented to PID 1. Closing the pipe makes all N exit together, leaving N zombies that only
 * PID 1 can reap; a zombie still answers kill(pid, 0), a reaped process does not (ESRCH), which
 * is how the end is seen. Run as the child of an init that is PID 1 of a fresh PID namespace
 * (no PID is reused there). Prints: "forked_ms=F reaped_ms=R". Usage: orphans N */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 0;
    int hold[2], report[2];
    pid_t *pids = calloc(n > 0 ? n : 1, sizeof *pids);
    if (n <= 0 || !pids || pipe(hold) || pipe(report))
        return 2;
    double start = now_ms();
    pid_t middle = fork();
    if (middle == 0) {
        close(report[0]);
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                char c;
                close(hold[1]);
                while (read(hold[0], &c, 1) < 0 && errno == EINTR) {}
                _exit(0);
            }
            if (pid < 0)
                _exit(3);
            if (write(report[1], &pid, sizeof pid) != sizeof pid)
                _exit(4);
        }
        _exit(0);
    }
    close(report[1]);
    for (int got = 0; got < n;) {
        ssize_t r = read(report[0], (char *)pids + got * sizeof *pids, (n - got) * sizeof *pids);
        if (r <= 0)
            return 5;
        got += r / sizeof *pids;
    }
    int status;
    waitpid(middle, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return 6;
    double forked = now_ms();
    close(hold[1]); /* all N see end-of-file and exit */
    for (int i = 0; i < n;) {
        if (kill(pids[i], 0) == -1 && errno == ESRCH)
            i++;
        else
            usleep(100);
    }
    double reaped = now_ms();
    printf("forked_ms=%.3f reaped_ms=%.3f\n", forked - start, reaped - forked);
    return 0;
}
