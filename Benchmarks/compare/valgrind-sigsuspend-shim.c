/* Loaded with LD_PRELOAD into the gateway under valgrind by callgrind-per-request.sh.
 *
 * valgrind 3.19 (Debian 12) dies with an internal SIGSEGV as soon as a Swift program with an
 * async `main` parks its main thread in libdispatch's `_dispatch_sig_thread`, which loops on
 * sigsuspend(2). Parking in nanosleep(2) with the same signal mask instead keeps signal delivery
 * (SIGTERM, SIGHUP) working and lets valgrind run the program. Measurement only; never shipped.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t previous;
    struct timespec pause = {1, 0};
    sigprocmask(SIG_SETMASK, mask, &previous);
    nanosleep(&pause, 0);
    sigprocmask(SIG_SETMASK, &previous, 0);
    errno = EINTR;
    return -1;
}
