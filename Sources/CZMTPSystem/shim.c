#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/socket.h>
#include <limits.h>
#include "czmtp_system.h"

int czmtp_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int czmtp_iov_max(void) { return IOV_MAX; }

void czmtp_set_thread_name(const char *name) { (void)prctl(PR_SET_NAME, name, 0, 0, 0); }
