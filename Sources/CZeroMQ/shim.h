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

// zmq_errno() returns the thread's errno; these wrap the macros Swift cannot import.
static inline int atom_zmq_eagain(void) { return EAGAIN; }
static inline int atom_zmq_eintr(void) { return EINTR; }
static inline int atom_zmq_ehostunreach(void) { return EHOSTUNREACH; }
static inline int atom_zmq_eterm(void) { return ETERM; }
#endif
