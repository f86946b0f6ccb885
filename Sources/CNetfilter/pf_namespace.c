#define _GNU_SOURCE
#include <sched.h>
#include "pf_namespace.h"

int pf_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }
