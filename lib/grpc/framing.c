/* gRPC message framing and header value codecs. See grpc/framing.h. */
#include <string.h>

#include "grpc/framing.h"

void mc__grpc_prefix(uint8_t out[MC_GRPC_PREFIX_LEN], bool compressed,
                     uint32_t len) {
  out[0] = compressed ? 1 : 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}

/* ---- reading messages ---------------------------------------------------- */

void mc__grpc_reader_init(mc__grpc_reader *r, size_t max_msg) {
  memset(r, 0, sizeof *r);
  r->max_msg = max_msg;
  mc_buf_init(&r->msg, max_msg ? max_msg : 1); /* a second fence */
}

void mc__grpc_reader_free(mc__grpc_reader *r) {
  mc_buf_free(&r->msg);
}

static mc__grpc_frame_event fail(mc__grpc_reader *r, int err) {
  r->error = err;
  return MC_GRPC_FRAME_ERROR;
}

mc__grpc_frame_event mc__grpc_reader_feed(mc__grpc_reader *r, const void *data,
                                          size_t len, size_t *used) {
  const uint8_t *p = data;
  size_t off = 0;
  *used = 0;
  if (r->error)
    return MC_GRPC_FRAME_ERROR;
  if (!r->in_body) {
    while (r->nprefix < MC_GRPC_PREFIX_LEN && off < len)
      r->prefix[r->nprefix++] = p[off++];
    *used = off;
    if (r->nprefix < MC_GRPC_PREFIX_LEN)
      return MC_GRPC_FRAME_MORE;
    /* Nothing but 0 and 1 is defined; compression is the caller's call. */
    if (r->prefix[0] > 1)
      return fail(r, MC_EPROTO);
    r->compressed = r->prefix[0] == 1;
    r->want = (uint32_t)r->prefix[1] << 24 | (uint32_t)r->prefix[2] << 16 |
              (uint32_t)r->prefix[3] << 8 | r->prefix[4];
    /* Refused on the declared length, before a byte of it is stored. */
    if (r->want > r->max_msg)
      return fail(r, MC_ETOOBIG);
    r->in_body = true;
    mc_buf_reset(&r->msg);
  }
  size_t take = r->want - r->msg.len;
  if (take > len - off)
    take = len - off;
  int err = take ? mc_buf_append(&r->msg, p + off, take) : 0;
  if (err)
    return fail(r, err);
  off += take;
  *used = off;
  if (r->msg.len < r->want)
    return MC_GRPC_FRAME_MORE;
  r->in_body = false;
  r->nprefix = 0;
  r->nmsgs++;
  return MC_GRPC_FRAME_MESSAGE;
}

bool mc__grpc_reader_at_boundary(const mc__grpc_reader *r) {
  return !r->error && !r->in_body && r->nprefix == 0;
}

/* ---- grpc-message -------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Length of the UTF-8 sequence that lead byte c starts; 1 for bytes that
 * start none (they are copied alone, whatever they are). */
static size_t utf8_len(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF4)
    return 4;
  if (c >= 0xE0)
    return c <= 0xEF ? 3 : 1;
  if (c >= 0xC2)
    return 2;
  return 1;
}

/* Copies in to out, percent-decoding when asked; see the header. */
static size_t copy_text(mc_slice in, bool decode, char *out, size_t cap) {
  if (cap == 0)
    return 0;
  size_t n = 0;
  /* Where the sequence being written began, to cut before it if it does
   * not fit whole. */
  size_t seq_start = 0, seq_left = 0;
  for (size_t i = 0; i < in.len;) {
    unsigned char c = (unsigned char)in.ptr[i];
    size_t adv = 1;
    if (decode && c == '%' && i + 2 < in.len && hexval(in.ptr[i + 1]) >= 0 &&
        hexval(in.ptr[i + 2]) >= 0) {
      c = (unsigned char)(hexval(in.ptr[i + 1]) << 4 | hexval(in.ptr[i + 2]));
      adv = 3;
    }
    if (seq_left == 0 || (c & 0xC0) != 0x80) {
      seq_start = n;
      seq_left = utf8_len(c);
    }
    if (n + 1 >= cap) {
      /* Out of room: drop a sequence that began but cannot end. */
      if (seq_left > 0 && seq_start < n)
        n = seq_start;
      break;
    }
    out[n++] = (char)c;
    seq_left--;
    i += adv;
  }
  out[n] = 0;
  return n;
}

size_t mc__grpc_message_decode(mc_slice in, char *out, size_t cap) {
  return copy_text(in, true, out, cap);
}

size_t mc__grpc_text_copy(mc_slice in, char *out, size_t cap) {
  return copy_text(in, false, out, cap);
}

int mc__grpc_message_encode(mc_buf *b, mc_slice text) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < text.len; i++) {
    unsigned char c = (unsigned char)text.ptr[i];
    int err;
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      err = mc_buf_append_char(b, (char)c);
    } else {
      char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
      err = mc_buf_append(b, esc, 3);
    }
    if (err)
      return err;
  }
  return 0;
}

/* ---- grpc-status, grpc-timeout ------------------------------------------- */

int mc__grpc_status_parse(mc_slice v, int *out) {
  if (v.len == 0 || v.len > 10)
    return MC_EPARSE;
  int64_t n = 0;
  for (size_t i = 0; i < v.len; i++) {
    if (v.ptr[i] < '0' || v.ptr[i] > '9')
      return MC_EPARSE;
    n = n * 10 + (v.ptr[i] - '0');
  }
  if (n > INT32_MAX)
    return MC_EPARSE;
  *out = (int)n;
  return 0;
}

size_t mc__grpc_timeout_format(uint64_t ns, char out[10]) {
  static const struct {
    char unit;
    uint64_t ns;
  } units[] = {{'n', 1},          {'u', 1000},        {'m', 1000000},
               {'S', 1000000000}, {'M', 60000000000}, {'H', 3600000000000}};
  if (ns == 0)
    ns = 1;
  uint64_t v = 0;
  size_t u = 0;
  for (; u < sizeof units / sizeof units[0]; u++) {
    v = ns / units[u].ns + (ns % units[u].ns != 0);
    if (v <= 99999999)
      break;
  }
  if (u == sizeof units / sizeof units[0]) { /* past 11,000 years */
    u--;
    v = 99999999;
  }
  char digits[8];
  size_t nd = 0;
  do {
    digits[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t n = 0;
  while (nd)
    out[n++] = digits[--nd];
  out[n++] = units[u].unit;
  return n;
}
