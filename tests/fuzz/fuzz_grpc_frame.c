/* Fuzzes the gRPC message reader and the grpc-message decoder
 * (lib/grpc/framing.c).
 *
 * The first byte picks the reader's cap (0 to 255 bytes, so that caps are
 * met often); the rest is the payload of a response stream's DATA frames.
 * It is fed in one piece, one byte at a time, and cut at points derived
 * from the input. Checked, with abort():
 *  - a feed never takes more than it was given; MORE takes all of it;
 *  - a message is never longer than the cap, and its flag is 0 or 1;
 *  - an error is MC_ETOOBIG or MC_EPROTO and is sticky: later feeds take
 *    nothing;
 *  - every feeding sees the same messages, the same error and the same
 *    end state (at a message boundary or not): framing never depends on
 *    how the bytes arrived.
 * The same bytes are then a grpc-message value: decoded with any cap, the
 * output is NUL-terminated, shorter than the cap, and a prefix of the
 * uncut decoding; encoding any bytes and decoding them gives them back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/framing.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

/* What a feeding saw, as a running FNV-1a hash. */
typedef struct transcript {
  uint64_t h;
  uint64_t msgs;
  int error;
  bool boundary;
} transcript;

static void mix(transcript *t, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    t->h ^= b[i];
    t->h *= 0x100000001b3ULL;
  }
}

/* Feeds data[0..len) to a fresh reader in pieces: cuts[] are the ends of
 * the pieces (ascending, the last one len). */
static transcript feed(size_t cap, const uint8_t *data, size_t len,
                       const size_t *cuts, size_t ncuts) {
  transcript t = {.h = 0xcbf29ce484222325ULL};
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, cap);
  size_t off = 0;
  for (size_t c = 0; c < ncuts; c++) {
    size_t end = cuts[c];
    while (off < end) {
      size_t used;
      mc__grpc_frame_event ev =
          mc__grpc_reader_feed(&r, data + off, end - off, &used);
      CHECK(used <= end - off);
      off += used;
      if (ev == MC_GRPC_FRAME_MORE) {
        CHECK(off == end);
      } else if (ev == MC_GRPC_FRAME_MESSAGE) {
        CHECK(r.msg.len <= cap);
        CHECK(r.msg.len == r.want);
        unsigned char flag = r.compressed;
        mix(&t, &flag, 1);
        mix(&t, &r.msg.len, sizeof r.msg.len);
        mix(&t, r.msg.ptr ? r.msg.ptr : "", r.msg.len);
        t.msgs++;
        CHECK(r.nmsgs == t.msgs);
      } else {
        CHECK(r.error == MC_ETOOBIG || r.error == MC_EPROTO);
        t.error = r.error;
        /* Sticky: nothing more is taken. */
        CHECK(mc__grpc_reader_feed(&r, data + off, len - off, &used) ==
              MC_GRPC_FRAME_ERROR);
        CHECK(used == 0);
        goto done;
      }
    }
  }
done:
  t.boundary = mc__grpc_reader_at_boundary(&r);
  CHECK(!t.error || !t.boundary);
  mc__grpc_reader_free(&r);
  return t;
}

static bool same(transcript a, transcript b) {
  return a.h == b.h && a.msgs == b.msgs && a.error == b.error &&
         a.boundary == b.boundary;
}

static void check_message_codec(const uint8_t *data, size_t len) {
  mc_slice in = {(const char *)data, len};
  size_t full_cap = len + 1;
  char *full = malloc(full_cap);
  size_t n = mc__grpc_message_decode(in, full, full_cap);
  CHECK(n <= len && full[n] == 0);
  const size_t caps[] = {1, 2, 3, 4, 5, 8, 17, len / 2 + 1, len};
  char *out = malloc(full_cap);
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    size_t cap = caps[i];
    if (!cap || cap > full_cap)
      continue;
    size_t m = mc__grpc_message_decode(in, out, cap);
    CHECK(m < cap && out[m] == 0);
    CHECK(m <= n && memcmp(out, full, m) == 0);
  }
  free(out);
  free(full);

  mc_buf enc;
  mc_buf_init(&enc, 0);
  CHECK(mc__grpc_message_encode(&enc, in) == 0);
  for (size_t i = 0; i < enc.len; i++)
    CHECK(enc.ptr[i] >= 0x20 && enc.ptr[i] <= 0x7e);
  char *back = malloc(len + 1);
  CHECK(mc__grpc_message_decode(mc_buf_slice(&enc), back, len + 1) == len);
  CHECK(memcmp(back, data, len) == 0);
  free(back);
  mc_buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t cap = data[0];
  data++;
  size--;

  size_t whole[1] = {size};
  transcript a = feed(cap, data, size, whole, 1);

  if (size <= 4096) {
    size_t *bytes = malloc((size ? size : 1) * sizeof *bytes);
    for (size_t i = 0; i < size; i++)
      bytes[i] = i + 1;
    transcript b = feed(cap, data, size, bytes, size);
    CHECK(same(a, b));
    free(bytes);
  }

  /* A few cuts taken from the input itself. */
  size_t cuts[5], n = 0;
  for (size_t i = 0; i < 4 && size; i++) {
    size_t at = (size_t)data[(i * 7) % size] * (i + 1) % (size + 1);
    if (n == 0 || at > cuts[n - 1])
      cuts[n++] = at;
  }
  if (n == 0 || cuts[n - 1] != size)
    cuts[n++] = size;
  transcript c = feed(cap, data, size, cuts, n);
  CHECK(same(a, c));

  check_message_codec(data, size);
  return 0;
}
