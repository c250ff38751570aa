#ifndef ATOM_CPROTOBUFC_SHIM_H
#define ATOM_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
