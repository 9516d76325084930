// Image files for the CLI (stb_image from Debian's libstb-dev): decoding to
// RGB8 with size limits checked before any pixel is allocated, and PNG output.
#ifndef SAM_CLI_IMAGE_IO_H
#define SAM_CLI_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sam.h"

// Loads PNG, JPEG, BMP, TGA (grey and RGBA converted to RGB, as
// PIL's convert("RGB")). *rgb is malloc'd, width*height*3 bytes.
// Sizes beyond SAM_MAX_IMAGE_SIDE / SAM_MAX_IMAGE_PIXELS are refused from the
// header, before any pixel is allocated.
int image_load_rgb(const char *path, uint8_t **rgb, int *width, int *height, SamError *err);
// The same from bytes in memory; name is used in messages.
int image_decode_rgb(const uint8_t *data, size_t len, const char *name, uint8_t **rgb, int *width,
                     int *height, SamError *err);
int image_write_png_grey(const char *path, const uint8_t *pixels, int width, int height, SamError *err);

int file_read_all(const char *path, uint8_t **data, size_t *len, SamError *err);
int file_write_all(const char *path, const void *data, size_t len, SamError *err);

#endif
