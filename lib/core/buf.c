/* Growable buffers with a hard cap: everything read from the network lands
 * in one of these, so a peer can never make us allocate without bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microc/core.h"

void mc_buf_init(mc_buf *b, size_t limit) {
  b->ptr = NULL;
  b->len = 0;
  b->cap = 0;
  b->limit = limit;
}

void mc_buf_free(mc_buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

void mc_buf_reset(mc_buf *b) {
  b->len = 0;
  if (b->ptr)
    b->ptr[0] = '\0';
}

int mc_buf_reserve(mc_buf *b, size_t n) {
  if (n > SIZE_MAX / 2 - b->len)
    return MC_ETOOBIG;
  size_t need = b->len + n;
  if (b->limit && need > b->limit)
    return MC_ETOOBIG;
  if (need + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need + 1)
    cap *= 2;
  if (b->limit && cap > b->limit + 1)
    cap = b->limit + 1;
  char *p = realloc(b->ptr, cap);
  if (!p)
    return MC_ENOMEM;
  b->ptr = p;
  b->cap = cap;
  return 0;
}

int mc__buf_append_slow(mc_buf *b, const void *p, size_t n) {
  int err = mc_buf_reserve(b, n);
  if (err)
    return err;
  if (n)
    memcpy(b->ptr + b->len, p, n);
  b->len += n;
  b->ptr[b->len] = '\0';
  return 0;
}

int mc_buf_append_u64(mc_buf *b, uint64_t n) {
  char tmp[20];
  size_t k = sizeof tmp;
  do {
    tmp[--k] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  return mc_buf_append(b, tmp + k, sizeof tmp - k);
}

int mc_buf_append_char(mc_buf *b, char c) {
  return mc_buf_append(b, &c, 1);
}

int mc_buf_vappendf(mc_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return MC_EINVAL;
  if ((size_t)n < sizeof small)
    return mc_buf_append(b, small, (size_t)n);
  int err = mc_buf_reserve(b, (size_t)n);
  if (err)
    return err;
  vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int mc_buf_appendf(mc_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int err = mc_buf_vappendf(b, fmt, ap);
  va_end(ap);
  return err;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

int mc_buf_append_json_str(mc_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  int err = mc_buf_reserve(b, n + 2); /* escapes grow it further */
  if (err)
    return err;
  const unsigned char *p = (const unsigned char *)s;
  size_t start_len = b->len;
  if ((err = mc_buf_append_char(b, '"')))
    return err;
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
           p[run] != '\\')
      run++;
    if (run > i && (err = mc_buf_append(b, p + i, run - i)))
      goto fail;
    i = run;
    if (i >= n)
      break;
    unsigned char c = p[i];
    char esc[6];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      err = mc_buf_append(b, esc, 2);
      i++;
    } else if (c < 0x20) {
      const char *named = c == '\n'   ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
      if (named) {
        err = mc_buf_append(b, named, 2);
      } else {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        err = mc_buf_append(b, esc, 6);
      }
      i++;
    } else {
      size_t l = utf8_seq_len(p + i, n - i);
      if (l == 0) {
        err = mc_buf_append(b, "\xEF\xBF\xBD", 3);
        i++;
      } else {
        err = mc_buf_append(b, p + i, l);
        i += l;
      }
    }
    if (err)
      goto fail;
  }
  if ((err = mc_buf_append_char(b, '"')))
    goto fail;
  return 0;
fail:
  b->len = start_len;
  if (b->ptr)
    b->ptr[b->len] = '\0';
  return err;
}

void mc_buf_consume(mc_buf *b, size_t n) {
  if (n >= b->len) {
    mc_buf_reset(b);
    return;
  }
  memmove(b->ptr, b->ptr + n, b->len - n);
  b->len -= n;
  b->ptr[b->len] = '\0';
}

mc_slice mc_buf_slice(const mc_buf *b) {
  return (mc_slice){b->ptr, b->len};
}
