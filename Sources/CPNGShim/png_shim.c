// See png_shim.h. Every function here that calls libpng owns the setjmp point for that call,
// so libpng's longjmp on error lands in C and never crosses a Swift frame.

#include "png_shim.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The largest width and height libpng itself accepts (PNG_UINT_31_MAX). libpng's default
// user limit is 1,000,000 per side; the Swift caller applies its own pixel-count limit
// instead, so libpng's is lifted to the format's maximum.
#define SHIM_MAX_SIDE 0x7fffffffU

// The offset just past the IHDR chunk: the 8-byte signature, then IHDR's 4-byte length,
// 4-byte type, 13 bytes of data and 4-byte CRC.
#define IHDR_END 33

// Callback state. It lives on the heap because the callbacks change it between setjmp and
// longjmp, and C leaves such changes to automatic variables indeterminate after longjmp.
typedef struct shim_io {
    const uint8_t *input;
    size_t input_size;
    size_t input_offset;
    uint8_t *output;
    size_t output_size;
    size_t output_capacity;
    int truncated;
    int out_of_memory;
    char *message;
    size_t message_capacity;
} shim_io;

static void set_message(char *message, size_t capacity, const char *text) {
    if (message != NULL && capacity > 0) {
        snprintf(message, capacity, "%s", text);
    }
}

static void shim_error(png_structp png, png_const_charp text) {
    shim_io *io = (shim_io *)png_get_error_ptr(png);
    set_message(io->message, io->message_capacity, text);
    if (strcmp(text, "Out of memory") == 0 || strncmp(text, "Insufficient memory", 19) == 0) {
        io->out_of_memory = 1;
    }
    png_longjmp(png, 1);
}

// Warnings (unknown chunks, a bad CRC in an ancillary chunk, an sRGB profile mismatch) do
// not stop decoding. The library prints nothing, so they are dropped.
static void shim_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void shim_read(png_structp png, png_bytep destination, size_t length) {
    shim_io *io = (shim_io *)png_get_io_ptr(png);
    if (length > io->input_size - io->input_offset) {
        io->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(destination, io->input + io->input_offset, length);
    io->input_offset += length;
}

static void shim_write(png_structp png, png_bytep source, size_t length) {
    shim_io *io = (shim_io *)png_get_io_ptr(png);
    if (length > io->output_capacity - io->output_size) {
        size_t capacity = io->output_capacity == 0 ? 4096 : io->output_capacity;
        while (length > capacity - io->output_size) {
            if (capacity > SIZE_MAX / 2) {
                io->out_of_memory = 1;
                png_error(png, "Out of memory");
            }
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(io->output, capacity);
        if (grown == NULL) {
            io->out_of_memory = 1;
            png_error(png, "Out of memory");
        }
        io->output = grown;
        io->output_capacity = capacity;
    }
    memcpy(io->output + io->output_size, source, length);
    io->output_size += length;
}

static void shim_flush(png_structp png) {
    (void)png;
}

static png_shim_status check_signature(
    const uint8_t *data, size_t size, char *message, size_t message_capacity) {
    static const uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (size == 0) {
        set_message(message, message_capacity, "the file is empty");
        return PNG_SHIM_NOT_PNG;
    }
    size_t compared = size < 8 ? size : 8;
    if (memcmp(data, signature, compared) != 0) {
        set_message(message, message_capacity, "the file does not start with the PNG signature");
        return PNG_SHIM_NOT_PNG;
    }
    if (size < 8) {
        set_message(message, message_capacity, "the file ends inside the PNG signature");
        return PNG_SHIM_TRUNCATED;
    }
    return PNG_SHIM_OK;
}

// Checks that every chunk up to IEND lies inside the data. libpng 1.6.39 (Debian 12) allocates
// a buffer of the length an ancillary chunk's header declares before reading its data, so a
// 45-byte file with an sPLT header of length 536870961 made it allocate 512 MB, whatever
// png_set_chunk_malloc_max allowed. A length past the end of the data is a truncated file.
static png_shim_status check_chunk_lengths(
    const uint8_t *data, size_t size, char *message, size_t message_capacity) {
    char text[160];
    size_t offset = 8;
    while (offset < size) {
        if (size - offset < 12) {
            snprintf(text, sizeof text,
                "the file ends inside the chunk at byte %zu: expected 12 bytes of length, type "
                "and CRC, found %zu", offset, size - offset);
            set_message(message, message_capacity, text);
            return PNG_SHIM_TRUNCATED;
        }
        const uint8_t *chunk = data + offset;
        size_t length = (size_t)chunk[0] << 24 | (size_t)chunk[1] << 16 | (size_t)chunk[2] << 8
            | (size_t)chunk[3];
        if (length > size - offset - 12) {
            snprintf(text, sizeof text,
                "the chunk at byte %zu needs %zu bytes (8 of length and type, %zu of data, 4 of "
                "CRC), but only %zu remain", offset, length + 12, length, size - offset);
            set_message(message, message_capacity, text);
            return PNG_SHIM_TRUNCATED;
        }
        if (memcmp(chunk + 4, "IEND", 4) == 0) {
            break;
        }
        offset += 12 + length;
    }
    return PNG_SHIM_OK;
}

static shim_io *new_io(char *message, size_t message_capacity) {
    shim_io *io = (shim_io *)calloc(1, sizeof(shim_io));
    if (io == NULL) {
        set_message(message, message_capacity, "out of memory");
        return NULL;
    }
    io->message = message;
    io->message_capacity = message_capacity;
    return io;
}

static png_shim_status failure_status(const shim_io *io) {
    if (io->out_of_memory) {
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    return io->truncated ? PNG_SHIM_TRUNCATED : PNG_SHIM_CORRUPT;
}

png_shim_status png_shim_read_header(
    const uint8_t *data, size_t size, png_shim_header *header,
    char *message, size_t message_capacity) {
    png_shim_status status = check_signature(data, size, message, message_capacity);
    if (status != PNG_SHIM_OK) {
        return status;
    }
    // The signature and a 13-byte IHDR chunk take 33 bytes.
    if (size < IHDR_END) {
        set_message(message, message_capacity, "the file ends inside the IHDR chunk");
        return PNG_SHIM_TRUNCATED;
    }
    // png_read_info reads every chunk up to the first IDAT, which is more of the file than the
    // header needs. Feeding it the file's first 33 bytes and then an IDAT chunk header makes it
    // parse and check IHDR (length, CRC, field values) and stop there. A palette image must have
    // a PLTE chunk before IDAT, so a one-entry black palette goes between them. The real palette
    // is read when the pixels are decoded.
    static const uint8_t plte_chunk[15] = {
        0, 0, 0, 3, 'P', 'L', 'T', 'E', 0, 0, 0, 0xa7, 0x7a, 0x3d, 0xda};
    static const uint8_t idat_header[8] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    uint8_t prefix[IHDR_END + sizeof plte_chunk + sizeof idat_header];
    size_t prefix_size = 0;
    memcpy(prefix, data, IHDR_END);
    prefix_size += IHDR_END;
    // Byte 25 is IHDR's color type, and 3 is PNG_COLOR_TYPE_PALETTE.
    if (data[25] == PNG_COLOR_TYPE_PALETTE) {
        memcpy(prefix + prefix_size, plte_chunk, sizeof plte_chunk);
        prefix_size += sizeof plte_chunk;
    }
    memcpy(prefix + prefix_size, idat_header, sizeof idat_header);
    prefix_size += sizeof idat_header;

    shim_io *io = new_io(message, message_capacity);
    if (io == NULL) {
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    io->input = prefix;
    io->input_size = prefix_size;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, io, shim_error, shim_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(io);
        set_message(message, message_capacity, "out of memory");
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        // Running out of the synthetic prefix means IHDR was not the first chunk.
        status = io->out_of_memory ? PNG_SHIM_OUT_OF_MEMORY : PNG_SHIM_CORRUPT;
        png_destroy_read_struct(&png, &info, NULL);
        free(io);
        return status;
    }

    png_set_user_limits(png, SHIM_MAX_SIDE, SHIM_MAX_SIDE);
    png_set_read_fn(png, io, shim_read);
    png_read_info(png, info);

    png_uint_32 width = 0;
    png_uint_32 height = 0;
    int bit_depth = 0;
    int color_type = 0;
    int interlace_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace_type, NULL, NULL);
    header->width = width;
    header->height = height;
    header->bit_depth = bit_depth;
    header->color_type = color_type;
    header->interlace_type = interlace_type;

    png_destroy_read_struct(&png, &info, NULL);
    free(io);
    return PNG_SHIM_OK;
}

png_shim_status png_shim_decode_rgb8(
    const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size,
    char *message, size_t message_capacity) {
    png_shim_status status = check_signature(data, size, message, message_capacity);
    if (status != PNG_SHIM_OK) {
        return status;
    }
    status = check_chunk_lengths(data, size, message, message_capacity);
    if (status != PNG_SHIM_OK) {
        return status;
    }
    shim_io *io = new_io(message, message_capacity);
    if (io == NULL) {
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    io->input = data;
    io->input_size = size;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, io, shim_error, shim_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(io);
        set_message(message, message_capacity, "out of memory");
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        status = failure_status(io);
        png_destroy_read_struct(&png, &info, NULL);
        free(io);
        return status;
    }

    png_set_user_limits(png, SHIM_MAX_SIDE, SHIM_MAX_SIDE);
    png_set_read_fn(png, io, shim_read);
    png_read_info(png, info);

    png_uint_32 width = 0;
    png_uint_32 height = 0;
    int bit_depth = 0;
    int color_type = 0;
    int interlace_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace_type, NULL, NULL);
    size_t row_size = (size_t)width * 3;
    if (pixels_size != row_size * (size_t)height) {
        set_message(message, message_capacity, "the pixel buffer size does not match width * height * 3");
        png_destroy_read_struct(&png, &info, NULL);
        free(io);
        return PNG_SHIM_INVALID_ARGUMENT;
    }

    // Transforms that change the layout only, never the sample values' meaning: no
    // png_set_gamma, png_set_background or png_set_alpha_mode, which would gamma-convert or
    // composite.
    if (bit_depth == 16) {
        png_set_scale_16(png);
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_gray_to_rgb(png);
    }
    // png_set_palette_to_rgb turns a tRNS chunk into an alpha channel, so a tRNS chunk needs
    // the strip as much as a stored alpha channel does.
    if ((color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0) {
        png_set_strip_alpha(png);
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != 3
        || png_get_rowbytes(png, info) != row_size) {
        set_message(message, message_capacity, "libpng did not produce 8-bit RGB rows");
        png_destroy_read_struct(&png, &info, NULL);
        free(io);
        return PNG_SHIM_INVALID_ARGUMENT;
    }

    // With interlace handling on, each pass merges its pixels into rows that earlier passes
    // filled, so every pass reads into the same output rows.
    for (int pass = 0; pass < passes; pass++) {
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(png, pixels + (size_t)y * row_size, NULL);
        }
    }
    // Reading to IEND makes a file cut off after its last IDAT count as truncated.
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    free(io);
    return PNG_SHIM_OK;
}

png_shim_status png_shim_encode_rgb8(
    const uint8_t *pixels, uint32_t width, uint32_t height,
    uint8_t **output, size_t *output_size,
    char *message, size_t message_capacity) {
    *output = NULL;
    *output_size = 0;
    shim_io *io = new_io(message, message_capacity);
    if (io == NULL) {
        return PNG_SHIM_OUT_OF_MEMORY;
    }

    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, io, shim_error, shim_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        free(io);
        set_message(message, message_capacity, "out of memory");
        return PNG_SHIM_OUT_OF_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_shim_status status = io->out_of_memory ? PNG_SHIM_OUT_OF_MEMORY : PNG_SHIM_INVALID_ARGUMENT;
        png_destroy_write_struct(&png, &info);
        free(io->output);
        free(io);
        return status;
    }

    png_set_user_limits(png, SHIM_MAX_SIDE, SHIM_MAX_SIDE);
    png_set_write_fn(png, io, shim_write, shim_flush);
    png_set_IHDR(
        png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
        PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row_size = (size_t)width * 3;
    for (png_uint_32 y = 0; y < height; y++) {
        png_write_row(png, pixels + (size_t)y * row_size);
    }
    png_write_end(png, NULL);

    png_destroy_write_struct(&png, &info);
    *output = io->output;
    *output_size = io->output_size;
    free(io);
    return PNG_SHIM_OK;
}

void png_shim_free(void *buffer) {
    free(buffer);
}
