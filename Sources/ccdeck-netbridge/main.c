// ccdeck-netbridge: the one way out of a sandbox that has no network.
//
//   ccdeck-netbridge PORT SOCKET -- COMMAND [ARG...]
//
// Listens on 127.0.0.1:PORT inside the sandbox's own network namespace, passes every
// connection to the unix socket SOCKET (ccdeck's egress proxy, bound in from the host),
// runs COMMAND (the agent, with HTTP(S)_PROXY pointing at PORT) and exits as it does.
// Signals it receives go to COMMAND; as a container's PID 1 it also reaps orphans.
// Written in C and linked statically so that it runs in any image and under bwrap alike.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *socket_path;
static int wake[2] = {-1, -1};
static volatile pid_t child = -1;

static void on_signal(int sig) {
    int saved = errno;
    if (sig == SIGCHLD) {
        char b = 0;
        (void)!write(wake[1], &b, 1);
    } else if (child > 0) {
        kill(child, sig);
    }
    errno = saved;
}

static int send_all(int fd, const char *p, ssize_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= w;
    }
    return 1;
}

static void *pass(void *arg) {
    int client = (int)(long)arg;
    int up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, socket_path, sizeof addr.sun_path - 1);
    if (up < 0 || connect(up, (struct sockaddr *)&addr, sizeof addr) != 0) {
        static const char refused[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 38\r\nConnection: close\r\n\r\n"
                                      "ccdeck egress: the proxy is not there\n";
        send_all(client, refused, sizeof refused - 1);
        if (up >= 0) close(up);
        close(client);
        return NULL;
    }
    struct pollfd fds[2] = {{.fd = client, .events = POLLIN}, {.fd = up, .events = POLLIN}};
    int open[2] = {1, 1};
    char buf[65536];
    while (open[0] || open[1]) {
        fds[0].fd = open[0] ? client : -1;
        fds[1].fd = open[1] ? up : -1;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int broken = 0;
        for (int i = 0; i < 2 && !broken; i++) {
            if (!open[i] || !fds[i].revents) continue;
            int from = i == 0 ? client : up, to = i == 0 ? up : client;
            ssize_t n = recv(from, buf, sizeof buf, 0);
            if (n > 0) {
                if (!send_all(to, buf, n)) broken = 1;
            } else if (n == 0) {
                open[i] = 0;
                shutdown(to, SHUT_WR);
            } else if (errno != EINTR) {
                broken = 1;
            }
        }
        if (broken) break;
    }
    close(up);
    close(client);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: ccdeck-netbridge PORT SOCKET -- COMMAND [ARG...]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    socket_path = argv[2];
    if (port <= 0 || port > 65535 || strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "ccdeck-netbridge: bad port or socket path\n");
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 128) != 0) {
        fprintf(stderr, "ccdeck-netbridge: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 2;
    }
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return 2;

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaction(forwarded[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pid_t pid = fork();
    if (pid < 0) {
        perror("ccdeck-netbridge: fork");
        return 2;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) signal(forwarded[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[4], &argv[4]);
        fprintf(stderr, "ccdeck-netbridge: cannot run %s: %s\n", argv[4], strerror(errno));
        _exit(127);
    }
    child = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    struct pollfd fds[2] = {{.fd = lfd, .events = POLLIN}, {.fd = wake[0], .events = POLLIN}};
    for (;;) {
        fds[0].revents = fds[1].revents = 0;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;  // revents are stale: never act on them
            break;
        }
        if (fds[1].revents) {
            char drain[64];
            while (read(wake[0], drain, sizeof drain) > 0) {}
            int status;
            pid_t done;
            while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
                if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
        }
        if (fds[0].revents) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) continue;
            // A relay passes each write on as it comes: Nagle would hold an answer's second
            // small write for the agent's delayed ACK (40 ms on a kept connection).
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            pthread_t t;
            if (pthread_create(&t, &attr, pass, (void *)(long)c) != 0) close(c);
        }
    }
    return 2;
}
