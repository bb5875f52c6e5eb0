#ifndef SWIFT_ZMTP_CSODIUM_SHIM_H
#define SWIFT_ZMTP_CSODIUM_SHIM_H
#include <sodium.h>
#endif
