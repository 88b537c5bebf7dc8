/* Names of gRPC status codes and serving statuses, from the tables in
 * microc/grpc.h. */
#include "microc/grpc.h"

const char *mc_grpc_status_name(int code) {
  switch (code) {
#define MC__GRPC_STATUS_CASE(name, value)                                      \
  case value:                                                                  \
    return #name;
    MC_GRPC_STATUS_MAP(MC__GRPC_STATUS_CASE)
#undef MC__GRPC_STATUS_CASE
  }
  return "UNKNOWN_STATUS";
}

const char *mc_grpc_serving_name(int serving) {
  switch (serving) {
  case MC_GRPC_HEALTH_UNKNOWN:
    return "UNKNOWN";
  case MC_GRPC_HEALTH_SERVING:
    return "SERVING";
  case MC_GRPC_HEALTH_NOT_SERVING:
    return "NOT_SERVING";
  case MC_GRPC_HEALTH_SERVICE_UNKNOWN:
    return "SERVICE_UNKNOWN";
  }
  return "UNKNOWN_SERVING_STATUS";
}
