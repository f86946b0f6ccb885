#define _GNU_SOURCE
#include "CReactor.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

int creactor_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int creactor_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
  struct epoll_event event = {.events = events, .data = {.u64 = token}};
  return epoll_ctl(epfd, op, fd, &event);
}

int creactor_epoll_wait(int epfd, creactor_event *out, int capacity, int timeout_ms) {
  struct epoll_event events[1024];
  if (capacity > 1024) capacity = 1024;
  int ready = epoll_wait(epfd, events, capacity, timeout_ms);
  if (ready < 0) return errno == EINTR ? 0 : -1;
  for (int i = 0; i < ready; i++) {
    out[i].token = events[i].data.u64;
    out[i].events = events[i].events;
  }
  return ready;
}

int creactor_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int creactor_accept(int fd, void *address, uint32_t *length) {
  socklen_t size = *length;
  int accepted = accept4(fd, (struct sockaddr *)address, &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
  *length = size;
  return accepted;
}
