#include "error.h"

#include <stdio.h>
#include <string.h>

int sam_error(SamError *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

int sam_error_prefix(SamError *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[SAM_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[SAM_ERROR_LEN];
    memcpy(old, err->message, sizeof old);
    // Both parts are bounded so the combined message truncates, never overflows.
    snprintf(err->message, sizeof err->message, "%.200s: %.300s", prefix, old);
    return -1;
}
