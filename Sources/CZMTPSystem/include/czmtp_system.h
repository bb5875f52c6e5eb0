// The Linux system interfaces Swift's Glibc module does not expose (epoll, eventfd, accept4, ...),
// for ZMTPEngine only. Thin: no logic here.
#ifndef CZMTP_SYSTEM_H
#define CZMTP_SYSTEM_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/// accept4(2), hidden by Glibc's module map.
int czmtp_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// The size of `struct sockaddr_un`'s path field.
static inline int czmtp_sun_path_size(void) { return (int)sizeof(((struct sockaddr_un *)0)->sun_path); }

/// IOV_MAX, hidden by Glibc's module map.
int czmtp_iov_max(void);

/// Names the calling thread (prctl PR_SET_NAME; at most 15 characters are kept).
void czmtp_set_thread_name(const char *name);

#endif
