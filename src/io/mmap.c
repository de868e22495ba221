/*
 * POSIX implementation of ctts_map_file: open, fstat, mmap, close the fd
 * (the mapping stays valid). Nothing is read eagerly; pages fault in on use.
 */
#include "io/mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

ctts_status ctts_map_file(const char *path, ctts_mapped_file *out, char *err, size_t err_len) {
    out->data = NULL;
    out->size = 0;
    if (!path) return ctts_err(err, err_len, CTTS_E_INVALID_ARG, "map file: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ctts_err(err, err_len, CTTS_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot map '%s': not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot map '%s': file too large", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return CTTS_OK;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return ctts_err(err, err_len, CTTS_E_IO, "cannot map '%s': %s", path, strerror(e));
    out->data = p;
    out->size = size;
    return CTTS_OK;
}

void ctts_unmap_file(ctts_mapped_file *f) {
    if (!f) return;
    if (f->data && f->size) munmap(f->data, f->size);
    f->data = NULL;
    f->size = 0;
}
