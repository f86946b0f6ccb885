// The Linux interfaces the proxy's reactor needs that Glibc's Swift module does not export: epoll,
// eventfd and accept4. Thin inline wrappers, so no system header is re-exported to Swift.
#ifndef PILOTFISH_CREACTOR_H
#define PILOTFISH_CREACTOR_H

#include <stdint.h>

enum {
  CREACTOR_EPOLLIN = 0x001,
  CREACTOR_EPOLLOUT = 0x004,
  CREACTOR_EPOLLERR = 0x008,
  CREACTOR_EPOLLHUP = 0x010,
  CREACTOR_EPOLLRDHUP = 0x2000,
  CREACTOR_EPOLLEXCLUSIVE = 1u << 28,
};

/// One ready event: the registration's 64-bit token and the event bits.
typedef struct {
  uint64_t token;
  uint32_t events;
} creactor_event;

int creactor_epoll_create(void);
/// op: 1 add, 2 delete, 3 modify (EPOLL_CTL_*). Returns 0 or -1 with errno.
int creactor_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// Waits up to timeout_ms (-1: forever) and fills `out` (at most `capacity`, ≤ 1024). Returns the count,
/// 0 on timeout or EINTR, -1 on other errors.
int creactor_epoll_wait(int epfd, creactor_event *out, int capacity, int timeout_ms);
int creactor_eventfd(void);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; the peer's address goes to `address` (`*length` bytes of
/// room in, the address's length out), which saves a getpeername per connection.
int creactor_accept(int fd, void *address, uint32_t *length);

#endif
