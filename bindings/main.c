/*
** main.c: the lask interpreter, a stand-alone Lua (5.4 or LuaJIT 2.1) with
** lask built in.
**
** It behaves like the stock lua5.4 command: options -e -l -i -v -E -W (5.4
** only) -- and -, the global 'arg' table, LUA_INIT, a read-eval-print loop
** without readline, "interrupted!" on Ctrl-C, and "lask: <message>" plus a
** stack traceback on errors.  On top of that, lask_openlibs makes
** require "lask" find the copies of lask's modules compiled into the binary,
** so it works from any working directory.
**
** Everything but creating and closing the state runs inside pmain, under
** lua_pcall (STYLE 18), so that memory errors are reported, not fatal.
** Exit status: 0 on success, 1 on any error, 2 for a subcommand that is not
** available yet.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"

#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
#include <luajit.h>
#define ENGINE_BANNER LUAJIT_VERSION " -- " LUAJIT_COPYRIGHT ". " LUAJIT_URL
#define INIT_VAR_VERSIONED NULL
#else
#define ENGINE_BANNER LUA_COPYRIGHT
#define INIT_VAR_VERSIONED "LUA_INIT_5_4"
#endif

/* The name at the start of every message, whatever argv[0] is. */
#define PROGNAME "lask"

/* Flags set by the command-line options. */
#define OPT_NOENV 1   /* -E: ignore LUA_INIT, LUA_PATH and LUA_CPATH */
#define OPT_REPL 2    /* -i: interactive mode after the script */
#define OPT_VERSION 4 /* -v (or -i): print the banner */
#define OPT_EXEC 8    /* at least one -e */

/* The result of scanning the command line. */
struct options {
  int flags;  /* OPT_* bits */
  int script; /* argv index of the script (or "-"); argc when there is none */
  int bad;    /* argv index of an invalid option, or 0 */
};

/* The state the SIGINT handler interrupts. A signal handler can reach only
** static data, so this is the one mutable static of the bindings (STYLE 11
** does not apply: the interpreter has a single main state). Written before
** the handler is installed, read only by the handler. */
static lua_State *signal_state = NULL;

/* ---------------------------------------------------------------- messages */

/* Writes "prefix: msg" (or just "msg" when prefix is NULL) to stderr. */
static void print_message(const char *prefix, const char *msg) {
  if (prefix != NULL) fprintf(stderr, "%s: ", prefix);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* If 'status' is an error, prints the error object on top of the stack
** (with 'prefix', see print_message) and pops it. Returns 'status'. */
static int report_with(lua_State *L, int status, const char *prefix) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) {
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, -1));
      lua_remove(L, -2);
    }
    print_message(prefix, msg);
    lua_pop(L, 1);
  }
  return status;
}

/* report_with, messages prefixed with "lask". */
static int report(lua_State *L, int status) {
  return report_with(L, status, PROGNAME);
}

/* Prints why option 'bad' was rejected, then the usage, to stderr. */
static void print_usage(const char *bad) {
  if ((bad[1] == 'e' || bad[1] == 'l') && bad[2] == '\0') {
    fprintf(stderr, "%s: '%s' needs argument\n", PROGNAME, bad);
  } else {
    fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, bad);
  }
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
#if LASK_FLAVOUR == LASK_FLAVOUR_LUA54
          "  -W        turn warnings on\n"
#endif
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n",
          PROGNAME);
  fflush(stderr);
}

/* Prints the banner: lask's version, its flavour and the engine's own. */
static void print_version(void) {
  printf("%s %s (%s) -- %s\n", PROGNAME, LASK_VERSION_STRING,
         LASK_FLAVOUR_NAME, ENGINE_BANNER);
  fflush(stdout);
}

/* ------------------------------------------------------ protected calls */

/* Installs 'handler' for SIGINT. Async-signal-safe. */
static void set_sigint(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* Hook run by the interrupted state at its next call, return or
** instruction: removes itself and raises the error. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* SIGINT handler while Lua code runs. Setting a hook is the only safe way
** to stop the state from a signal handler. The default action comes back
** at once, so a second Ctrl-C kills a process stuck in a C function. */
static void on_sigint(int sig) {
  (void)sig;
  set_sigint(SIG_DFL);
  lua_sethook(signal_state, stop_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Message handler: turns the error into a string (through __tostring when
** the object has one, which is then printed as is) and appends a stack
** traceback to string messages. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      return 1;
    }
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below its 'narg' arguments with the message handler
** and Ctrl-C interruption in place. Returns the lua_pcall status; on error
** the message is on top of the stack. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  signal_state = L;
  set_sigint(on_sigint);
  int status = lua_pcall(L, narg, nres, base);
  set_sigint(SIG_DFL);
  lua_remove(L, base);
  return status;
}

/* Runs the chunk just loaded with 'status' (no arguments, no results) and
** reports any error. Returns the status. */
static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* Runs file 'name' (stdin when NULL). Returns the status. */
static int dofile(lua_State *L, const char *name) {
  return dochunk(L, luaL_loadfile(L, name));
}

/* Runs source text 's' as a chunk called 'name'. Returns the status. */
static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* Option -l 'spec': "mod" sets global mod = require("mod"), "g=mod" sets
** global g = require("mod"). Returns the status (errors are reported). */
static int dolibrary(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  lua_getglobal(L, "require");
  lua_pushstring(L, eq != NULL ? eq + 1 : spec);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) {
    size_t len = eq != NULL ? (size_t)(eq - spec) : strlen(spec);
    lua_pushlstring(L, spec, len); /* a NUL-terminated copy of the name */
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return report(L, status);
}

/* ---------------------------------------------------------- command line */

/* Checks option argv[*i] and, for -e and -l, steps *i over a separate
** value. Returns the OPT_* flags it sets, or -1 if the option is invalid
** (then *i is unchanged). */
static int parse_option(char **argv, int *i) {
  const char *a = argv[*i];
  if (a[1] == 'e' || a[1] == 'l') {
    if (a[2] == '\0') { /* the value is the next argument */
      const char *value = argv[*i + 1];
      if (value == NULL || value[0] == '-') return -1;
      *i += 1;
    }
    return a[1] == 'e' ? OPT_EXEC : 0;
  }
  if (a[2] != '\0') return -1;
  switch (a[1]) {
  case 'E': return OPT_NOENV;
  case 'i': return OPT_REPL | OPT_VERSION;
  case 'v': return OPT_VERSION;
#if LASK_FLAVOUR == LASK_FLAVOUR_LUA54
  case 'W': return 0;
#endif
  default: return -1;
  }
}

/* Scans the options before the script name into 'o'. */
static void parse_args(int argc, char **argv, struct options *o) {
  o->flags = 0;
  o->bad = 0;
  o->script = argc;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') { /* a script name, or "-" */
      o->script = i;
      return;
    }
    if (strcmp(a, "--") == 0) {
      o->script = i + 1;
      return;
    }
    int at = i, flags = parse_option(argv, &i);
    if (flags < 0) {
      o->bad = at;
      return;
    }
    o->flags |= flags;
  }
}

/* Sets global 'arg' as lua5.4 does: the script at index 0, its arguments
** at 1, 2, ... and the interpreter and options at negative indexes. With
** no script, argv[0] is at index 0 and the options follow it. */
static void create_arg_table(lua_State *L, int argc, char **argv,
                             int script) {
  int zero = script < argc ? script : 0;
  int npos = argc - zero - 1;
  lua_createtable(L, npos > 0 ? npos : 0, zero + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - zero);
  }
  lua_setglobal(L, "arg");
}

/* Runs the -e, -l and -W options among argv[1 .. limit-1], in order.
** Returns 1, or 0 after the first failure (already reported). */
static int run_options(lua_State *L, char **argv, int limit) {
  for (int i = 1; i < limit; i++) {
    char opt = argv[i][1];
#if LASK_FLAVOUR == LASK_FLAVOUR_LUA54
    if (opt == 'W') lua_warning(L, "@on", 0);
#endif
    if (opt != 'e' && opt != 'l') continue;
    const char *value = argv[i][2] != '\0' ? argv[i] + 2 : argv[++i];
    int status = opt == 'e' ? dostring(L, value, "=(command line)")
                            : dolibrary(L, value);
    if (status != LUA_OK) return 0;
  }
  return 1;
}

/* Runs LUA_INIT_5_4, or else LUA_INIT (only LUA_INIT for LuaJIT): source
** text, or "@file" to run a file. Returns the status. */
static int run_init(lua_State *L) {
  const char *var = INIT_VAR_VERSIONED;
  const char *init = var != NULL ? getenv(var) : NULL;
  if (init == NULL) {
    var = "LUA_INIT";
    init = getenv(var);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dofile(L, init + 1);
  lua_pushfstring(L, "=%s", var);
  int status = dostring(L, init, lua_tostring(L, -1));
  lua_pop(L, 1); /* the chunk name */
  return status;
}

/* Pushes arg[1], ..., arg[#arg] for the script. Returns how many. */
static int push_script_args(lua_State *L) {
  lua_getglobal(L, "arg");
  if (!lua_istable(L, -1)) luaL_error(L, "'arg' is not a table");
  int n = (int)lua_rawlen(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* Runs the script argv[script] ("-" means stdin unless it follows "--")
** with its arguments as '...'. Returns the status (errors are reported). */
static int run_script(lua_State *L, char **argv, int script) {
  const char *name = argv[script];
  if (strcmp(name, "-") == 0 && strcmp(argv[script - 1], "--") != 0) {
    name = NULL;
  }
  int status = luaL_loadfile(L, name);
  if (status == LUA_OK) {
    int n = push_script_args(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

/* ------------------------------------------------- read-eval-print loop */

/* Writes the prompt: global _PROMPT (first line) or _PROMPT2 (continuation
** lines) when it is a string or number, else "> " or ">> ". */
static void write_prompt(lua_State *L, int first) {
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  const char *prompt = lua_tostring(L, -1);
  if (prompt == NULL) prompt = first ? "> " : ">> ";
  fputs(prompt, stdout);
  fflush(stdout);
  lua_pop(L, 1);
}

/* Replaces the string on top of the stack with the same string minus its
** last character if that is a newline. */
static void strip_newline(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (len > 0 && s[len - 1] == '\n') {
    lua_pushlstring(L, s, len - 1);
    lua_remove(L, -2);
  }
}

/* Prompts for and reads one line of any length from stdin, and pushes it
** without its newline; a first line "=expr" becomes "return expr". Returns
** 0, pushing nothing, at end of input. */
static int read_line(lua_State *L, int first) {
  write_prompt(L, first);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t total = 0;
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    if (fgets(p, (int)LUAL_BUFFERSIZE, stdin) == NULL) break;
    size_t n = strlen(p);
    luaL_addsize(&b, n);
    total += n;
    if (n > 0 && p[n - 1] == '\n') break;
  }
  luaL_pushresult(&b);
  if (total == 0) {
    lua_pop(L, 1);
    return 0;
  }
  strip_newline(L);
  const char *line = lua_tostring(L, -1);
  if (first && line[0] == '=') {
    lua_pushfstring(L, "return %s", line + 1);
    lua_remove(L, -2);
  }
  return 1;
}

/* Whether 'status' and the message on top of the stack say that the chunk
** is only cut short: Lua 5.4 ends such messages with <eof>, LuaJIT with
** '<eof>'. */
static int is_incomplete(lua_State *L, int status) {
  static const char mark[] = "<eof>";
  const size_t mlen = sizeof mark - 1;
  if (status != LUA_ERRSYNTAX) return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  if (msg == NULL) return 0;
  if (len > 0 && msg[len - 1] == '\'') len--;
  return len >= mlen && memcmp(msg + len - mlen, mark, mlen) == 0;
}

/* With the line on top of the stack, tries to compile "return <line>;" so
** that an expression shows its values. On success pushes the function
** (above the line) and returns LUA_OK; otherwise pushes nothing. */
static int load_as_expression(lua_State *L) {
  const char *code = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
  int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2); /* the code */
  } else {
    lua_pop(L, 2); /* the code and the error */
  }
  return status;
}

/* With the line on top of the stack, compiles it as a statement, reading
** more lines while the chunk is incomplete; the line on the stack becomes
** the whole text. Pushes the function or the error message, returns the
** status. End of input inside a chunk reports its syntax error. */
static int load_as_statement(lua_State *L) {
  for (;;) {
    size_t len;
    const char *code = lua_tolstring(L, -1, &len);
    int status = luaL_loadbuffer(L, code, len, "=stdin");
    if (!is_incomplete(L, status) || !read_line(L, 0)) return status;
    lua_remove(L, -2); /* the message */
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3); /* text .. "\n" .. new line */
  }
}

/* Reads the next input, as an expression or else a statement. Leaves only
** the function or the error message on the stack and returns the status;
** returns -1, with an empty stack, at end of input. */
static int load_input(lua_State *L) {
  lua_settop(L, 0);
  if (!read_line(L, 1)) return -1;
  int status = load_as_expression(L);
  if (status != LUA_OK) status = load_as_statement(L);
  lua_remove(L, 1); /* the text */
  return status;
}

/* Prints the values on the stack, if any, with the global 'print'. */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    print_message(PROGNAME, lua_pushfstring(L, "error calling 'print' (%s)",
                                            lua_tostring(L, -1)));
  }
}

/* The interactive loop: reads, runs and prints until end of input. Errors
** are printed (without the "lask:" prefix) and the loop goes on. */
static void run_repl(lua_State *L) {
  int status;
  while ((status = load_input(L)) != -1) {
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) {
      print_results(L);
    } else {
      report_with(L, status, NULL);
    }
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
}

/* ---------------------------------------------------------------- main */

/* Whether 'name' is a subcommand rather than a script name. */
static int is_subcommand(const char *name) {
  return strcmp(name, "scheduler") == 0 || strcmp(name, "worker") == 0;
}

/* DISPATCH POINT for the distributed scheduler issue: "lask scheduler ..."
** and "lask worker ..." start the processes of a distributed cluster. They
** are not written yet, so this says so. Returns the exit status (2). */
static int run_subcommand(lua_State *L, int argc, char **argv) {
  (void)L;
  (void)argc;
  fprintf(stderr,
          "%s: the '%s' command is not available yet (distributed "
          "scheduler)\n",
          PROGNAME, argv[1]);
  return 2;
}

/* Opens the standard libraries (told to ignore LUA_PATH and LUA_CPATH if
** 'noenv') and preloads lask's own modules. */
static void open_libraries(lua_State *L, int noenv) {
  if (noenv) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  lask_openlibs(L);
#if LASK_FLAVOUR == LASK_FLAVOUR_LUA54
  lua_gc(L, LUA_GCGEN, 0, 0); /* the collector mode lua5.4 uses */
#endif
}

/* Runs what follows the options: the script, then the prompt if -i; with
** no script, -e or -v, the prompt on a terminal or else stdin as a chunk.
** Returns the exit status. */
static int run_main(lua_State *L, int argc, char **argv,
                    const struct options *o) {
  if (o->script < argc && run_script(L, argv, o->script) != LUA_OK) return 1;
  if (o->flags & OPT_REPL) {
    run_repl(L);
  } else if (o->script == argc && !(o->flags & (OPT_EXEC | OPT_VERSION))) {
    if (!isatty(STDIN_FILENO)) return dofile(L, NULL) == LUA_OK ? 0 : 1;
    print_version();
    run_repl(L);
  }
  return 0;
}

/* The protected main: argument 1 is argc, 2 is argv. Returns (pushes) the
** exit status; errors it cannot handle reach main. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  if (argc > 1 && is_subcommand(argv[1])) {
    lua_pushinteger(L, run_subcommand(L, argc, argv));
    return 1;
  }
  struct options o;
  parse_args(argc, argv, &o);
  int rc = 1;
  if (o.bad != 0) {
    print_usage(argv[o.bad]);
  } else {
    if (o.flags & OPT_VERSION) print_version();
    open_libraries(L, o.flags & OPT_NOENV);
    create_arg_table(L, argc, argv, o.script);
    if (((o.flags & OPT_NOENV) || run_init(L) == LUA_OK) &&
        run_options(L, argv, o.script)) {
      rc = run_main(L, argc, argv, &o);
    }
  }
  lua_pushinteger(L, rc);
  return 1;
}

/* Creates the state, runs pmain protected, reports what escaped it. */
int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    print_message(PROGNAME, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int rc = status == LUA_OK ? (int)lua_tointeger(L, -1) : EXIT_FAILURE;
  report(L, status);
  lua_close(L);
  return rc;
}
