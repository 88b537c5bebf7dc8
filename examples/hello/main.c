/* hello: the smallest useful microc service.
 *
 *   GET  /hello/{name}  -> {"message": "Hello, <name>!"}
 *   POST /echo          -> the validated body, echoed
 */
#include <microc/http.h>

typedef struct greeting {
  mc_slice message;
} greeting;

MC_MODEL(greeting, MC_STRING(greeting, message, MC_REQUIRED,
                             MC_EXAMPLE("\"Hello, world!\"")));

typedef struct hello_path {
  mc_slice name;
} hello_path;

MC_MODEL(hello_path, MC_STRING(hello_path, name, MC_REQUIRED, MC_LEN(1, 100),
                               MC_DESC("who to greet")));

typedef struct echo_msg {
  mc_slice message;
  int64_t count;
  MC_ARRAY_OF(mc_slice) tags;
} echo_msg;

MC_MODEL(echo_msg, MC_STRING(echo_msg, message, MC_REQUIRED, MC_LEN(1, 256)),
         MC_INT(echo_msg, count, MC_REQUIRED, MC_MIN(1), MC_MAX(100)),
         MC_ARRAY(echo_msg, tags, MC_STRING_ITEMS(), MC_MAX_ITEMS(10)));

static int hello(mc_req *req) {
  const hello_path *p = mc_req_params(req);
  char *text = mc_arena_sprintf(mc_req_arena(req), "Hello, %.*s!",
                                MC_SLICE_ARG(p->name));
  if (!text)
    return MC_ENOMEM;
  greeting out = {mc_slice_cstr(text)};
  return mc_res_model(req, 200, &greeting_model, &out);
}

static int echo(mc_req *req) {
  return mc_res_model(req, 200, &echo_msg_model, mc_req_body(req));
}

static const mc_route routes[] = {
    {"GET", "/hello/{name}", hello, .params = &hello_path_model,
     .response = &greeting_model, .summary = "Greet someone"},
    {"POST", "/echo", echo, .body = &echo_msg_model,
     .response = &echo_msg_model, .summary = "Echo a validated message"},
};

int main(int argc, char **argv) {
  mc_app_info info = {.name = "hello",
                      .version = "1.0.0",
                      .description = "The microc example service."};
  return mc_serve(&info, routes, MC_COUNT(routes), argc, argv);
}
