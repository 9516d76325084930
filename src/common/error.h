// Error reporting for the core: every fallible function takes a SamError*
// and fills it with a message naming the problem (file, tensor, shape,
// argument). No global state: the caller owns the SamError.
#ifndef SAM_COMMON_ERROR_H
#define SAM_COMMON_ERROR_H

#include <stdarg.h>

#define SAM_ERROR_LEN 512

typedef struct SamError {
    char message[SAM_ERROR_LEN];
} SamError;

// Formats into err->message (printf-style) and returns -1 so that callers can
// write `return sam_error(err, "...", ...);`. err may be NULL.
int sam_error(SamError *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// Prepends "context: " to an existing message (e.g. the file name).
int sam_error_prefix(SamError *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
