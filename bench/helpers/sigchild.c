/* Child for the signal-latency benchmark. Prints "ready", then for every SIGUSR1 prints the
 * CLOCK_MONOTONIC time (ns) taken first thing in its handler: the moment the signal reached the
 * child. The benchmark subtracts the moment it sent the signal to PID 1. SIGTERM ends it. */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int signal) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    (void)signal;
    unsigned long long ns = (unsigned long long)now.tv_sec * 1000000000ULL + now.tv_nsec;
    char text[32];
    int i = sizeof text;
    text[--i] = '\n';
    do {
        text[--i] = (char)('0' + ns % 10);
        ns /= 10;
    } while (ns);
    (void)!write(1, text + i, sizeof text - i);
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &action, 0);
    (void)!write(1, "ready\n", 6);
    for (;;)
        pause();
}
