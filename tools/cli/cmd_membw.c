/*
 * ctts dev membw [--mb N] [--threads N]: the host's memory read bandwidth,
 * N threads each summing its share of an N MB buffer (best of 5 passes after
 * one that pages it in). The language models here are bound by this number
 * and other tenants of a shared host move it, so `ctts bench` runs it in a
 * child process (its buffer must not count in the bench's peak RSS) before
 * and after the timed runs and prints both next to its results.
 */
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

#define MEMBW_MAX_THREADS 256

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} membw_part;

static void *membw_read(void *arg) {
    membw_part *w = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= w->n; i += 4) s0 += w->p[i], s1 += w->p[i + 1], s2 += w->p[i + 2], s3 += w->p[i + 3];
    for (; i < w->n; i++) s0 += w->p[i];
    w->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_membw(cli_args *a) {
    const long mb = a->membw_mb > 0 ? a->membw_mb : 256;
    int threads = a->mp.n_threads > 0 ? a->mp.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > MEMBW_MAX_THREADS) threads = MEMBW_MAX_THREADS;
    const size_t words = (size_t)mb << 17; /* 8-byte words */
    uint64_t *buf = malloc(words * sizeof *buf);
    if (!buf) return cli_fail("%s", "membw: out of memory");
    for (size_t i = 0; i < words; i++) buf[i] = i;
    membw_part part[MEMBW_MAX_THREADS];
    pthread_t tid[MEMBW_MAX_THREADS];
    double best = 0;
    uint64_t check = 0;
    for (int pass = 0; pass < 6; pass++) {
        const double t0 = now_s();
        int started = 0;
        for (int t = 0; t < threads; t++) {
            const size_t lo = words * (size_t)t / (size_t)threads,
                         hi = words * (size_t)(t + 1) / (size_t)threads;
            part[t] = (membw_part){.p = buf + lo, .n = hi - lo};
            if (t > 0 && pthread_create(&tid[t], NULL, membw_read, &part[t]) == 0) started = t;
            else if (t > 0) membw_read(&part[t]);
        }
        membw_read(&part[0]);
        for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
        const double dt = now_s() - t0;
        for (int t = 0; t < threads; t++) check += part[t].sum;
        if (pass > 0 && dt > 0 && words * 8.0 / dt > best) best = words * 8.0 / dt;
    }
    free(buf);
    volatile uint64_t sink = check; /* the sums are used */
    (void)sink;
    printf("%.1f GB/s read (%d thread%s, %ld MB)\n", best * 1e-9, threads, threads > 1 ? "s" : "", mb);
    return 0;
}

double cli_host_read_gbs(int threads) {
    char self[4096], thr[16];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    snprintf(thr, sizeof thr, "%d", threads);
    char *argv[] = {self, "dev", "membw", "--threads", thr, NULL};
    int fd[2];
    if (pipe(fd) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    const int rc = posix_spawn(&pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    double gbs = -1;
    if (rc == 0) {
        char line[256] = "";
        FILE *f = fdopen(fd[0], "r");
        if (f) {
            if (!fgets(line, sizeof line, f) || sscanf(line, "%lf GB/s", &gbs) != 1) gbs = -1;
            fclose(f);
        } else {
            close(fd[0]);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            gbs = -1;
    } else {
        close(fd[0]);
    }
    return gbs;
}
