/* File copy (see file_copy.h). */
#include "io/file_copy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

ctts_status io_copy_file(const char *src, const char *dst, char *err, size_t err_len) {
    FILE *in = fopen(src, "rb");
    if (!in) return ctts_err(err, err_len, CTTS_E_IO, "cannot open '%s': %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return ctts_err(err, err_len, CTTS_E_IO, "cannot write '%s': %s", dst, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int bad = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) bad = 1;
    bad |= ferror(in);
    fclose(in);
    if (fclose(out) != 0) bad = 1;
    return bad ? ctts_err(err, err_len, CTTS_E_IO, "cannot copy '%s' to '%s'", src, dst) : CTTS_OK;
}
