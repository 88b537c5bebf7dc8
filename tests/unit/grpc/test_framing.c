/* gRPC message framing: the 5-byte prefix and the incremental reader. */
#include <criterion/criterion.h>
#include <string.h>

#include "grpc/framing.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A stream of messages, framed, and what the reader should give back. */
typedef struct msg {
  const char *body;
  size_t len;
  bool compressed;
} msg;

static size_t frame(const msg *ms, size_t n, uint8_t *out) {
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    mc__grpc_prefix(out + off, ms[i].compressed, (uint32_t)ms[i].len);
    off += MC_GRPC_PREFIX_LEN;
    memcpy(out + off, ms[i].body, ms[i].len);
    off += ms[i].len;
  }
  return off;
}

/* Feeds data in pieces: the first cut at `cut`, then `step` bytes at a
 * time. Checks every message against want; returns how many came. */
static size_t feed_all(mc__grpc_reader *r, const uint8_t *data, size_t len,
                       size_t cut, size_t step, const msg *want) {
  size_t off = 0, got = 0;
  while (off < len) {
    size_t piece = off < cut ? cut - off : step;
    if (piece > len - off)
      piece = len - off;
    size_t left = piece;
    const uint8_t *p = data + off;
    while (left > 0) {
      size_t used;
      mc__grpc_frame_event ev = mc__grpc_reader_feed(r, p, left, &used);
      cr_assert_leq(used, left);
      cr_assert_neq(ev, MC_GRPC_FRAME_ERROR, "cut %zu step %zu", cut, step);
      if (ev == MC_GRPC_FRAME_MORE)
        cr_assert_eq(used, left, "MORE takes everything");
      p += used;
      left -= used;
      if (ev == MC_GRPC_FRAME_MESSAGE) {
        cr_assert_eq(r->msg.len, want[got].len, "message %zu, cut %zu", got,
                     cut);
        cr_assert(memcmp(r->msg.ptr, want[got].body, want[got].len) == 0);
        cr_assert_eq(r->compressed, want[got].compressed);
        got++;
      }
    }
    off += piece;
  }
  return got;
}

Test(framing, prefix_is_flag_and_big_endian_length) {
  uint8_t p[5];
  mc__grpc_prefix(p, false, 0x01020304);
  cr_assert(memcmp(p, "\x00\x01\x02\x03\x04", 5) == 0);
  mc__grpc_prefix(p, true, 0);
  cr_assert(memcmp(p, "\x01\x00\x00\x00\x00", 5) == 0);
  mc__grpc_prefix(p, false, UINT32_MAX);
  cr_assert(memcmp(p, "\x00\xff\xff\xff\xff", 5) == 0);
}

static const msg stream[] = {
    {"\x08\x01", 2, false},
    {"", 0, false},
    {"hello, world", 12, true},
    {"", 0, false},
    {"", 0, false},
    {"\x0a\x03"
     "abc",
     5, false},
};

Test(framing, a_stream_split_at_every_byte) {
  uint8_t buf[256];
  size_t len = frame(stream, COUNT_OF(stream), buf);
  for (size_t cut = 0; cut <= len; cut++) {
    mc__grpc_reader r;
    mc__grpc_reader_init(&r, 64);
    size_t got = feed_all(&r, buf, len, cut, len, stream);
    cr_assert_eq(got, COUNT_OF(stream), "cut at %zu", cut);
    cr_assert_eq(r.nmsgs, COUNT_OF(stream));
    cr_assert(mc__grpc_reader_at_boundary(&r));
    mc__grpc_reader_free(&r);
  }
}

Test(framing, a_stream_one_byte_at_a_time) {
  uint8_t buf[256];
  size_t len = frame(stream, COUNT_OF(stream), buf);
  for (size_t step = 1; step <= 7; step++) {
    mc__grpc_reader r;
    mc__grpc_reader_init(&r, 64);
    cr_assert_eq(feed_all(&r, buf, len, 0, step, stream), COUNT_OF(stream));
    mc__grpc_reader_free(&r);
  }
}

Test(framing, boundary_only_between_messages) {
  uint8_t buf[64];
  size_t len = frame(stream, 1, buf); /* 5 + 2 bytes */
  for (size_t cut = 1; cut < len; cut++) {
    mc__grpc_reader r;
    mc__grpc_reader_init(&r, 64);
    size_t used;
    cr_assert_eq(mc__grpc_reader_feed(&r, buf, cut, &used), MC_GRPC_FRAME_MORE);
    cr_assert_eq(used, cut);
    cr_assert_not(mc__grpc_reader_at_boundary(&r), "cut at %zu", cut);
    cr_assert_eq(mc__grpc_reader_feed(&r, buf + cut, len - cut, &used),
                 MC_GRPC_FRAME_MESSAGE);
    cr_assert(mc__grpc_reader_at_boundary(&r));
    mc__grpc_reader_free(&r);
  }
}

Test(framing, zero_length_messages) {
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, 0); /* only empty messages allowed */
  const uint8_t two[10] = {0};
  size_t used;
  cr_assert_eq(mc__grpc_reader_feed(&r, two, 10, &used), MC_GRPC_FRAME_MESSAGE);
  cr_assert_eq(used, 5);
  cr_assert_eq(r.msg.len, 0);
  cr_assert_eq(mc__grpc_reader_feed(&r, two + 5, 5, &used),
               MC_GRPC_FRAME_MESSAGE);
  cr_assert_eq(used, 5);
  cr_assert_eq(r.nmsgs, 2);
  /* The input ends right after a prefix: still a whole message. */
  cr_assert_eq(mc__grpc_reader_feed(&r, two, 0, &used), MC_GRPC_FRAME_MORE);
  cr_assert_eq(used, 0);
  cr_assert(mc__grpc_reader_at_boundary(&r));
  mc__grpc_reader_free(&r);
}

Test(framing, oversize_is_refused_on_the_prefix) {
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, 16);
  uint8_t buf[5 + 17];
  memset(buf, 'x', sizeof buf);
  mc__grpc_prefix(buf, false, 17);
  size_t used;
  cr_assert_eq(mc__grpc_reader_feed(&r, buf, sizeof buf, &used),
               MC_GRPC_FRAME_ERROR);
  cr_assert_eq(r.error, MC_ETOOBIG);
  cr_assert_eq(used, 5, "no byte of the body is taken");
  cr_assert_eq(r.msg.len, 0);
  /* Sticky: nothing more is read. */
  cr_assert_eq(mc__grpc_reader_feed(&r, buf + 5, 17, &used),
               MC_GRPC_FRAME_ERROR);
  cr_assert_eq(used, 0);
  cr_assert_not(mc__grpc_reader_at_boundary(&r));
  mc__grpc_reader_free(&r);
}

Test(framing, huge_declared_length_is_refused) {
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, 4u << 20);
  size_t used;
  cr_assert_eq(mc__grpc_reader_feed(&r, "\x00\xff\xff\xff\xff", 5, &used),
               MC_GRPC_FRAME_ERROR);
  cr_assert_eq(r.error, MC_ETOOBIG);
  mc__grpc_reader_free(&r);
}

Test(framing, exactly_the_cap_is_accepted) {
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, 16);
  uint8_t buf[5 + 16];
  memset(buf, 'y', sizeof buf);
  mc__grpc_prefix(buf, false, 16);
  size_t used;
  cr_assert_eq(mc__grpc_reader_feed(&r, buf, sizeof buf, &used),
               MC_GRPC_FRAME_MESSAGE);
  cr_assert_eq(used, sizeof buf);
  cr_assert_eq(r.msg.len, 16);
  mc__grpc_reader_free(&r);
}

Test(framing, unknown_flag_is_a_protocol_error) {
  mc__grpc_reader r;
  mc__grpc_reader_init(&r, 16);
  size_t used;
  cr_assert_eq(mc__grpc_reader_feed(&r, "\x02\x00\x00\x00\x00", 5, &used),
               MC_GRPC_FRAME_ERROR);
  cr_assert_eq(r.error, MC_EPROTO);
  mc__grpc_reader_free(&r);
}
