#ifndef ATOM_CZEROMQ_SHIM_H
#define ATOM_CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>
#include <string.h>

// zmq_errno() returns the thread's errno; these wrap the macros Swift cannot import.
static inline int atom_zmq_eagain(void) { return EAGAIN; }
static inline int atom_zmq_eintr(void) { return EINTR; }
static inline int atom_zmq_ehostunreach(void) { return EHOSTUNREACH; }
static inline int atom_zmq_eterm(void) { return ETERM; }
#endif
