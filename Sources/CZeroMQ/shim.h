#ifndef ATOM_CZEROMQ_SHIM_H
#define ATOM_CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>
#include <string.h>
#ifdef __linux__
// For the reactors' wait (ReactorWait) and wake-up signal (WakeSignal): Glibc's Swift module
// does not export these headers.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

#ifdef __linux__
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
// The reactors' scheduler slice (ReactorScheduling). glibc has no wrapper for these calls here,
// and the kernel's header may clash with a newer glibc's own definition: this is the kernel's
// `struct sched_attr`, version 1 (56 bytes), under a name of our own.
struct atom_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};
static inline int atom_sched_getattr(int thread, struct atom_sched_attr *attributes) {
    return (int)syscall(SYS_sched_getattr, thread, attributes, (unsigned)sizeof(*attributes), 0U);
}
static inline int atom_sched_setattr(int thread, struct atom_sched_attr *attributes) {
    attributes->size = (uint32_t)sizeof(*attributes);
    return (int)syscall(SYS_sched_setattr, thread, attributes, 0U);
}
#endif

// zmq_errno() returns the thread's errno; these wrap the macros Swift cannot import.
static inline int atom_zmq_eagain(void) { return EAGAIN; }
static inline int atom_zmq_eintr(void) { return EINTR; }
static inline int atom_zmq_ehostunreach(void) { return EHOSTUNREACH; }
static inline int atom_zmq_eterm(void) { return ETERM; }
#endif
