/* grpcprobe: runs gRPC health checks for the integration tests.
 *
 *   GET /probe?host=H&port=P&service=S&timeout_ms=T
 *   GET /probe?target=H:P/S&timeout_ms=T      (a Consul GRPC check target)
 *
 * calls mc_grpc_health_check from the request's fiber and answers 200 with
 * {"rc": "<mc_err_name>", "grpc_status": N, "status_name": "...",
 *  "serving": N, "serving_name": "...", "message": "...", "elapsed_ms": N},
 * rc "OK" when the call completed. */
#include <microc/grpc.h>
#include <microc/http.h>
#include <microc/log.h>
#include <stdio.h>
#include <string.h>

typedef struct probe_query {
  mc_slice host;
  int64_t port;
  mc_slice service;
  mc_slice target;
  int64_t timeout_ms;
} probe_query;
MC_MODEL(probe_query, MC_STRING(probe_query, host),
         MC_INT(probe_query, port, MC_MIN(0), MC_MAX(65535), MC_DEFAULT(0)),
         MC_STRING(probe_query, service, MC_DEFAULT_STR("")),
         MC_STRING(probe_query, target),
         MC_INT(probe_query, timeout_ms, MC_MIN(0), MC_DEFAULT(0)));

static int probe(mc_req *req) {
  const probe_query *q = mc_req_query(req);
  mc_slice host = q->host, service = q->service;
  int port = (int)q->port;
  if (q->target.ptr &&
      mc_grpc_target_parse(q->target, &host, &port, &service) != 0)
    return mc_res_problem(req, 422, "target is not host:port[/service]");
  if (!host.ptr)
    return mc_res_problem(req, 422, "give host and port, or target");

  int status = -1, serving = 0;
  char message[512];
  uint64_t t0 = mc_now_ns();
  int rc = mc_grpc_health_check(host, port, service, (uint64_t)q->timeout_ms,
                                &status, &serving, message, sizeof message);
  uint64_t elapsed_ms = (mc_now_ns() - t0) / 1000000;

  mc_buf b;
  mc_buf_init(&b, 0);
  const char *rc_name = rc ? mc_err_name(rc) : "OK";
  mc_buf_append_cstr(&b, "{\"rc\":");
  mc_buf_append_json_str(&b, rc_name, strlen(rc_name));
  mc_buf_appendf(&b, ",\"grpc_status\":%d,\"status_name\":\"%s\"", status,
                 status < 0 ? "" : mc_grpc_status_name(status));
  mc_buf_appendf(&b, ",\"serving\":%d,\"serving_name\":\"%s\"", serving,
                 mc_grpc_serving_name(serving));
  mc_buf_append_cstr(&b, ",\"message\":");
  mc_buf_append_json_str(&b, message, strlen(message));
  mc_buf_appendf(&b, ",\"elapsed_ms\":%llu}", (unsigned long long)elapsed_ms);
  MC_LOG(MC_LOG_INFO, "probed", MC_LOG_CSTR("rc", rc_name),
         MC_LOG_INT("grpc_status", status));
  int err = mc_res_json(req, 200, mc_buf_slice(&b));
  mc_buf_free(&b);
  return err;
}

static const mc_route routes[] = {
    {"GET", "/probe", probe, .query = &probe_query_model},
};

int main(int argc, char **argv) {
  return mc_serve(&(mc_app_info){.name = "grpcprobe", .version = "0.0.1"},
                  routes, MC_COUNT(routes), argc, argv);
}
