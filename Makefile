# lask Makefile.
#   make                 the interpreter build/lask and build/lib/lask/core.so (Lua 5.4)
#   make LUA=luajit      the same for LuaJIT 2.1, in build/luajit/
#   make test            C unit tests, then the busted specs on Lua 5.4 and LuaJIT
#   make test-all        everything CI runs (adds sanitizers, fuzzing, luarocks)
#   make asan | tsan | fuzz | check | bench | examples | install | clean | echo
# Project flags live in LASK_* variables: luarocks passes CFLAGS on the
# command line, which must not drop them.

LUA ?= lua5.4
# The flavour follows LUA or, under luarocks, the include directory.
ifneq ($(findstring jit,$(LUA)$(LUA_INCDIR)),)
  FLAVOUR := luajit
  LUA_PC := luajit
  LUA_BIN ?= luajit
  BUILD_DEFAULT := build/luajit
else
  FLAVOUR := lua5.4
  LUA_PC := lua5.4
  LUA_BIN ?= lua5.4
  BUILD_DEFAULT := build
endif
# luarocks (which passes LUA_INCDIR) builds apart from the development tree.
ifdef LUA_INCDIR
  BUILD_DEFAULT := build/rock-$(FLAVOUR)
endif
BUILD ?= $(BUILD_DEFAULT)

CC ?= cc
# BLAS for matmul: Debian's OpenBLAS (libopenblas-dev).
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
CFLAGS ?= -O2 -g
LIBFLAG ?= -shared
WERROR ?=
LASK_WARN := -Wall -Wextra -Wshadow -Wundef -Wwrite-strings \
  -Wmissing-prototypes -Wstrict-prototypes -Wconversion $(WERROR)
LASK_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(LASK_WARN) \
  -iquote runtime $(BLAS_CFLAGS)
ifdef LUA_INCDIR
  LUA_CFLAGS := -I$(LUA_INCDIR)
else
  LUA_CFLAGS := $(shell pkg-config --cflags $(LUA_PC))
endif
LUA_LIBDIR_SYS := $(shell pkg-config --variable=libdir $(LUA_PC))
ifeq ($(FLAVOUR),luajit)
  LUA_STATIC ?= $(LUA_LIBDIR_SYS)/libluajit-5.1.a
else
  LUA_STATIC ?= $(LUA_LIBDIR_SYS)/liblua5.4.a
endif
ifdef LIBUV_LIBDIR
  UV_LIBS := -L$(LIBUV_LIBDIR) -luv
else
  UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
endif
ifdef LIBUV_INCDIR
  LUA_CFLAGS += -I$(LIBUV_INCDIR)
endif
LIBS := $(UV_LIBS) $(BLAS_LIBS) -lz -lpthread -lmvec -lm -ldl

# Install locations (luarocks passes its own).
PREFIX ?= /usr/local
LUADIR ?= $(PREFIX)/share/lua/$(if $(filter luajit,$(FLAVOUR)),5.1,5.4)
LIBDIR ?= $(PREFIX)/lib/lua/$(if $(filter luajit,$(FLAVOUR)),5.1,5.4)
BINDIR ?= $(PREFIX)/bin

RUNTIME_SRC := $(wildcard runtime/*.c)
BINDINGS_SRC := $(filter-out bindings/main.c,$(wildcard bindings/*.c))
LUA_MODULES := $(sort $(wildcard lua/lask/*.lua))
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/obj/%.o)
BINDINGS_OBJ := $(BINDINGS_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/embedded.o
CORE_SO := $(BUILD)/lib/lask/core.so
INTERP := $(BUILD)/lask

.PHONY: all rock test test-c test-lua test-all check check-layers asan tsan \
  fuzz bench examples install clean echo

all: $(INTERP) $(CORE_SO)

rock: $(CORE_SO)

# runtime/ is compiled without the Lua include path: the layer rule.
# The array kernels are loops the compiler should vectorize (-O3 turns on
# the vectorizer's full cost model; -O2 leaves most of these loops scalar).
$(BUILD)/obj/runtime/nd%.o: LASK_CFLAGS += -O3

$(BUILD)/obj/runtime/%.o: runtime/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LASK_CFLAGS) -MMD -c $< -o $@

$(BUILD)/obj/bindings/%.o: bindings/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LASK_CFLAGS) $(LUA_CFLAGS) -MMD -c $< -o $@

$(BUILD)/gen/embedded.c: tools/embed.lua $(LUA_MODULES)
	@mkdir -p $(@D)
	$(LUA_BIN) tools/embed.lua $(LUA_MODULES) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embedded.o: $(BUILD)/gen/embedded.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LASK_CFLAGS) -Ibindings $(LUA_CFLAGS) -c $< -o $@

$(CORE_SO): $(RUNTIME_OBJ) $(BINDINGS_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) -o $@ $^ $(LIBS)

# The interpreter: Lua linked statically, symbols exported (-Wl,-E) so that
# other C modules loaded by it find the Lua API.
$(INTERP): $(BUILD)/obj/bindings/main.o $(RUNTIME_OBJ) $(BINDINGS_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -Wl,-E $(LUA_STATIC) $(LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- tests
TEST_C_SRC := $(wildcard tests/c/test_*.c)
# The other interpreter's build, for the cross-interpreter specs.
ifeq ($(FLAVOUR),luajit)
  OTHER_LUA := lua5.4
  OTHER_CPATH := $(abspath build/lib)/?.so;;
else
  OTHER_LUA := luajit
  OTHER_CPATH := $(abspath build/luajit/lib)/?.so;;
endif
TEST_ENV = LUA_PATH="$(abspath lua)/?.lua;$(abspath lua)/?/init.lua;$(abspath tests)/?.lua;;" \
  LUA_CPATH="$(abspath $(BUILD)/lib)/?.so;;" LASK_BIN="$(abspath $(INTERP))" \
  LASK_LUA="$(LUA_BIN)" LASK_OTHER_LUA="$(OTHER_LUA)" \
  LASK_OTHER_CPATH="$(OTHER_CPATH)" $(if $(PRELOAD),LD_PRELOAD="$(PRELOAD)")
BUSTED ?= /usr/bin/busted
SPECS ?= tests/spec

$(BUILD)/test_c: tests/c/main.c $(TEST_C_SRC) $(RUNTIME_SRC) tests/c/test.h \
  tests/c/test_list.h $(wildcard runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LASK_CFLAGS) $(TEST_SAN) -Itests/c -o $@ tests/c/main.c \
	  $(TEST_C_SRC) $(RUNTIME_SRC) $(LIBS)

# RUNNER prefixes the test commands (make tsan runs them without address
# randomisation: gcc 12's TSan cannot map its shadow memory under the
# ASLR entropy of recent kernels, and fails at random otherwise).
RUNNER ?=
test-c: $(BUILD)/test_c
	$(RUNNER) $(BUILD)/test_c

test-lua: all
	$(TEST_ENV) $(RUNNER) $(LUA_BIN) $(BUSTED) -o tests/summary.lua $(SPECS)

# Both flavours are built before either runs: the specs check decoding
# across interpreters.
test: test-c
	$(MAKE) all LUA=lua5.4
	$(MAKE) all LUA=luajit
	$(MAKE) test-lua LUA=lua5.4
	$(MAKE) test-lua LUA=luajit

test-all:
	tools/test-all.sh

check: check-layers
	@if command -v luacheck >/dev/null; then luacheck lua tests/spec; \
	else echo "luacheck not installed (apt-get install lua-check): skipped"; fi

check-layers:
	@if grep -nE '#[[:space:]]*include *[<"](lua|lauxlib|lualib|luajit)\.h' \
	  runtime/*.[ch]; then \
	  echo "runtime/ must not include Lua headers"; exit 1; fi
	@echo "layers ok: runtime/ includes no Lua header"

# Sanitizers: the C tests, then the busted specs against a sanitized core.so
# (the stock interpreter preloads the sanitizer runtime).
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
  -fno-sanitize-recover=undefined
# Sanitizers: the C tests, then the busted specs on both interpreters
# against sanitized builds (the stock interpreter preloads the runtime).
ASAN_RUN = ASAN_OPTIONS=detect_leaks=0 $(MAKE) test-lua \
  CFLAGS="-O1 -g $(ASAN_FLAGS)" LIBFLAG="-shared $(ASAN_FLAGS)" \
  PRELOAD="$$($(CC) -print-file-name=libasan.so) \
  $$($(CC) -print-file-name=libubsan.so)"
asan:
	$(MAKE) test-c BUILD=build/asan TEST_SAN="$(ASAN_FLAGS)" CFLAGS="-O1 -g"
	$(MAKE) all LUA=lua5.4
	$(MAKE) all LUA=luajit
	$(ASAN_RUN) BUILD=build/asan LUA=lua5.4
	$(ASAN_RUN) BUILD=build/asan-luajit LUA=luajit

TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
# The specs that start threads (the others run on one thread).
TSAN_SPECS ?= tests/spec/threads_spec.lua tests/spec/delayed_spec.lua \
  tests/spec/array_engine_spec.lua
NO_ASLR = setarch $$(uname -m) -R
TSAN_RUN = OPENBLAS_NUM_THREADS=1 $(MAKE) test-lua SPECS="$(TSAN_SPECS)" RUNNER="$(NO_ASLR)" \
  CFLAGS="-O1 -g $(TSAN_FLAGS)" LIBFLAG="-shared $(TSAN_FLAGS)" \
  PRELOAD="$$($(CC) -print-file-name=libtsan.so)"
tsan:
	$(MAKE) test-c BUILD=build/tsan TEST_SAN="$(TSAN_FLAGS)" CFLAGS="-O1 -g" \
	  RUNNER="$(NO_ASLR)"
	$(TSAN_RUN) BUILD=build/tsan LUA=lua5.4
	$(TSAN_RUN) BUILD=build/tsan-luajit LUA=luajit

# libFuzzer target for the decoder (clang); FUZZ_TIME seconds.
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
$(BUILD)/fuzz_decode: tests/fuzz/fuzz_decode.c $(RUNTIME_SRC) $(BINDINGS_SRC) \
  $(BUILD)/gen/embedded.c
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
	  -iquote runtime -iquote bindings $(BLAS_CFLAGS) \
	  $(LUA_CFLAGS) -o $@ $^ $(LUA_STATIC) $(LIBS)
fuzz: $(BUILD)/fuzz_decode $(CORE_SO)
	@mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-artifacts
	$(LUA_BIN) tests/fuzz/seeds.lua $(BUILD)/fuzz-corpus $(BUILD)
	$(BUILD)/fuzz_decode -max_total_time=$(FUZZ_TIME) -rss_limit_mb=2048 \
	  -artifact_prefix=$(BUILD)/fuzz-artifacts/ -print_final_stats=1 \
	  $(BUILD)/fuzz-corpus

# ---------------------------------------------------------------- examples
examples: $(BUILD)/embed_host
$(BUILD)/embed_host: examples/embed/host.c $(RUNTIME_OBJ) $(BINDINGS_OBJ)
	$(CC) $(CFLAGS) $(LASK_CFLAGS) $(LUA_CFLAGS) -o $@ $^ $(LUA_STATIC) \
	  -Wl,-E $(LIBS)

bench: all
	bench/run.sh

install: rock
	mkdir -p $(DESTDIR)$(LUADIR)/lask $(DESTDIR)$(LIBDIR)/lask
	cp lua/lask/*.lua $(DESTDIR)$(LUADIR)/lask/
	cp $(CORE_SO) $(DESTDIR)$(LIBDIR)/lask/core.so

clean:
	rm -rf build

echo:
	@echo "FLAVOUR=$(FLAVOUR) LUA=$(LUA) LUA_BIN=$(LUA_BIN) BUILD=$(BUILD)"
	@echo "CC=$(CC) CFLAGS=$(CFLAGS) LUA_CFLAGS=$(LUA_CFLAGS)"
	@echo "LUA_STATIC=$(LUA_STATIC) LIBS=$(LIBS)"
	@echo "LUADIR=$(LUADIR) LIBDIR=$(LIBDIR) BINDIR=$(BINDIR)"
