// dial.h: connecting to the host's stream listeners from inside the utility VM.
//
// In the UVM the host is always vsock CID 2 (VMADDR_CID_HOST). For tests on a machine without a
// vsock peer, a Unix socket path prefix can stand in for it: port P is then reached at
// "<prefix>_<P>", the convention Firecracker uses for its hybrid vsock (host-side Unix sockets).
#ifndef INIT_DIAL_H
#define INIT_DIAL_H

// Connects a SOCK_STREAM (close-on-exec, blocking) socket to the host on `port`: to the Unix
// socket "<unix_prefix>_<port>" when unix_prefix is non-NULL, else to vsock CID 2. Returns the fd,
// or -1 with errno set (nothing is logged: callers decide whether a failure matters).
int dial_host(const char *unix_prefix, unsigned int port);

// Parses a port number (decimal, 1..UINT32_MAX-1). Returns 0 and sets *port, or -1.
int parse_port(const char *s, unsigned int *port);

#endif  // INIT_DIAL_H
