// A C wrapper around libpng's classic API for Swift callers.
//
// libpng reports errors by calling longjmp back to a setjmp point. A longjmp across Swift
// frames is undefined behaviour, so every libpng call happens inside one C function of
// png_shim.c that owns the setjmp point. Those functions return a status code and copy
// libpng's error message into a caller buffer instead of unwinding.

#ifndef AURAFACE_PNG_SHIM_H
#define AURAFACE_PNG_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// The outcome of a png_shim call.
typedef enum png_shim_status {
    PNG_SHIM_OK = 0,
    /// The bytes do not start with the 8-byte PNG signature.
    PNG_SHIM_NOT_PNG = 1,
    /// The data ended before libpng read the IEND chunk.
    PNG_SHIM_TRUNCATED = 2,
    /// libpng rejected the data: bad CRC, bad IHDR, invalid zlib stream, and so on.
    PNG_SHIM_CORRUPT = 3,
    /// A memory allocation failed.
    PNG_SHIM_OUT_OF_MEMORY = 4,
    /// The caller passed a buffer of the wrong size, or libpng produced a layout other than
    /// 8-bit RGB (a bug in the transform setup).
    PNG_SHIM_INVALID_ARGUMENT = 5,
} png_shim_status;

/// The image header (IHDR) of a PNG.
typedef struct png_shim_header {
    uint32_t width;
    uint32_t height;
    /// Bits per sample: 1, 2, 4, 8 or 16.
    int32_t bit_depth;
    /// PNG_COLOR_TYPE_* of png.h: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    int32_t color_type;
    /// 0 for none, 1 for Adam7.
    int32_t interlace_type;
} png_shim_header;

/// Reads the signature and IHDR of the PNG in `data`, without decoding pixels.
png_shim_status png_shim_read_header(
    const uint8_t *data, size_t size, png_shim_header *header,
    char *message, size_t message_capacity);

/// Decodes the PNG in `data` to 8-bit RGB, row-major and interleaved, into `pixels`, which
/// must hold exactly width * height * 3 bytes (`pixels_size`).
///
/// The conversion keeps sample values as stored: 16-bit samples are scaled to 8 bits
/// (v * 255 / 65535, rounded), gray is copied to R, G and B, palette indices are looked up,
/// and alpha is dropped without compositing. No gamma or color-profile correction is applied.
png_shim_status png_shim_decode_rgb8(
    const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
    char *message, size_t message_capacity);

/// Encodes 8-bit RGB pixels (width * height * 3 bytes, row-major, interleaved) as a
/// non-interlaced PNG. On success `*output` points to `*output_size` bytes that the caller
/// releases with png_shim_free.
png_shim_status png_shim_encode_rgb8(
    const uint8_t *pixels, uint32_t width, uint32_t height,
    uint8_t **output, size_t *output_size,
    char *message, size_t message_capacity);

/// Releases a buffer returned by png_shim_encode_rgb8.
void png_shim_free(void *buffer);

#endif
