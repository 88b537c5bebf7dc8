/* TLS for the server's connections: OpenSSL on memory BIOs, so libuv keeps
 * doing the socket I/O and the HTTP reader keeps reading plaintext.
 *
 * Ciphertext read from the socket goes into the read BIO; SSL_read gives
 * plaintext to mc__conn_plain. Plaintext to send goes through SSL_write
 * into the write BIO; its bytes are sent from two buffers, one queue and
 * one in flight with libuv, so a write in progress never sees its memory
 * move. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "http/server_int.h"

struct mc__tls {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  bool after;       /* call mc__conn_written once everything queued has left */
  bool handshaken;
  bool seen_bytes;
};

/* ALPN: h2, else http/1.1; a client that offers neither goes on without
 * ALPN (and speaks HTTP/1.1), as RFC 7301 allows a server to. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char protos[] = "\x02h2\x08http/1.1";
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, protos, sizeof protos - 1, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static void ssl_error(char *err, size_t errcap, const char *what,
                      const char *file) {
  unsigned long e = ERR_get_error();
  char buf[256] = "";
  if (e)
    ERR_error_string_n(e, buf, sizeof buf);
  snprintf(err, errcap, "%s %s: %s", what, file, buf[0] ? buf : "failed");
  ERR_clear_error();
}

int mc__tls_ctx_new(const char *cert, const char *key, SSL_CTX **out, char *err,
                    size_t errcap) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    snprintf(err, errcap, "out of memory");
    return MC_ENOMEM;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    ssl_error(err, errcap, "cannot use the certificate", cert);
    SSL_CTX_free(ctx);
    return MC_EINVAL;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    bool mismatch =
        ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    ssl_error(err, errcap,
              mismatch ? "the key does not match the certificate"
                       : "cannot use the key",
              key);
    SSL_CTX_free(ctx);
    return MC_EINVAL;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ssl_error(err, errcap, "the key does not match the certificate", key);
    SSL_CTX_free(ctx);
    return MC_EINVAL;
  }
  *out = ctx;
  return 0;
}

void mc__tls_ctx_free(SSL_CTX *ctx) {
  SSL_CTX_free(ctx);
}

int mc__tls_conn_new(mc__conn *c, SSL_CTX *ctx) {
  mc__tls *t = calloc(1, sizeof *t);
  if (!t)
    return MC_ENOMEM;
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    return MC_ENOMEM;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_accept_state(t->ssl);
  c->tls = t;
  return 0;
}

void mc__tls_conn_free(mc__conn *c) {
  mc__tls *t = c->tls;
  if (!t)
    return;
  SSL_free(t->ssl);
  free(t);
  c->tls = NULL;
}

/* Once nothing is left to send, an answer waiting for that has left. */
void mc__tls_drained(mc__conn *c) {
  mc__tls *t = c->tls;
  if (t->after && !mc__out_pending(c)) {
    t->after = false;
    mc__conn_written(c);
  }
}

/* Moves what the write BIO holds to the connection's out-queue and sends
 * it. */
static void flush(mc__conn *c) {
  mc__tls *t = c->tls;
  char chunk[16384];
  int n;
  while ((n = BIO_read(t->wbio, chunk, sizeof chunk)) > 0)
    if (mc__out_append(c, chunk, (size_t)n) != 0) {
      mc__conn_abort(c);
      return;
    }
  mc__out_flush(c);
  if (c->state != C_CLOSED)
    mc__tls_drained(c);
}

bool mc__tls_busy(const mc__conn *c) {
  return c->tls && (mc__out_pending(c) || c->tls->after);
}

int mc__tls_read(mc__conn *c, const char *data, size_t len) {
  mc__tls *t = c->tls;
  /* A TLS connection opens with a handshake record (22); a letter is a
   * plain HTTP request sent to the HTTPS port. */
  if (!t->seen_bytes && len) {
    t->seen_bytes = true;
    if ((data[0] >= 'A' && data[0] <= 'Z') ||
        (data[0] >= 'a' && data[0] <= 'z'))
      return MC_EUNSUPPORTED;
  }
  while (len) {
    int n = BIO_write(t->rbio, data, (int)(len > 65536 ? 65536 : len));
    if (n <= 0)
      return MC_ENOMEM;
    data += n;
    len -= (size_t)n;
  }
  if (!t->handshaken) {
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      int e = SSL_get_error(t->ssl, r);
      flush(c); /* alerts, or the next handshake flight */
      ERR_clear_error();
      return e == SSL_ERROR_WANT_READ ? 0 : MC_EPROTO;
    }
    t->handshaken = true;
    const unsigned char *proto;
    unsigned int plen;
    SSL_get0_alpn_selected(t->ssl, &proto, &plen);
    if (plen == 2 && !memcmp(proto, "h2", 2)) {
      if (mc__h2_start(c) != 0)
        return MC_ENOMEM;
      mc__conn_h2_state(c);
    }
  }
  char *plain = c->w->plainbuf;
  for (;;) {
    int n = SSL_read(t->ssl, plain, (int)sizeof c->w->plainbuf);
    if (n > 0) {
      mc__conn_plain(c, plain, (size_t)n);
      if (c->state == C_CLOSED)
        return 0;
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    flush(c); /* session tickets and the like */
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ)
      return 0;
    return e == SSL_ERROR_ZERO_RETURN ? MC_ECLOSED : MC_EPROTO;
  }
}

int mc__tls_write(mc__conn *c, const uv_buf_t *bufs, unsigned n,
                  bool close_after) {
  mc__tls *t = c->tls;
  for (unsigned i = 0; i < n; i++) {
    size_t off = 0;
    while (off < bufs[i].len) {
      int k = SSL_write(
          t->ssl, bufs[i].base + off,
          (int)(bufs[i].len - off > 65536 ? 65536 : bufs[i].len - off));
      if (k <= 0) {
        ERR_clear_error();
        return MC_EPROTO;
      }
      off += (size_t)k;
    }
  }
  if (close_after)
    SSL_shutdown(t->ssl); /* close_notify rides with the answer */
  t->after = true;
  flush(c);
  return 0;
}

int mc__tls_send_raw(mc__conn *c, const char *data, size_t len) {
  mc__tls *t = c->tls;
  if (SSL_write(t->ssl, data, (int)len) != (int)len) {
    ERR_clear_error();
    return MC_EPROTO;
  }
  flush(c);
  return 0;
}
