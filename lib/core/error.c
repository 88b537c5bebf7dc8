/* Error names and messages, generated from MC_ERRNO_MAP. */
#include "microc/core.h"

const char *mc_err_name(int err) {
  switch (err) {
#define MC__ERRNO_NAME(name, code, msg)                                        \
  case code:                                                                   \
    return "MC_E" #name;
    MC_ERRNO_MAP(MC__ERRNO_NAME)
#undef MC__ERRNO_NAME
  case 0:
    return "MC_OK";
  }
  return "MC_UNKNOWN";
}

const char *mc_strerror(int err) {
  switch (err) {
#define MC__ERRNO_MSG(name, code, msg)                                         \
  case code:                                                                   \
    return msg;
    MC_ERRNO_MAP(MC__ERRNO_MSG)
#undef MC__ERRNO_MSG
  case 0:
    return "success";
  }
  return "unknown error";
}
