# hvsim: the one, non-recursive Makefile. Out-of-tree build under build/
# (build/asan, build/ubsan, build/tsan with SANITIZE=address|undefined|thread).
# Targets: all, test, conformance, unit, integration, fuzz, clean. V=1 shows commands.

SANITIZE ?=
ifeq ($(SANITIZE),)
  B ?= build
  SANFLAGS :=
else ifeq ($(SANITIZE),address)
  B ?= build/asan
  SANFLAGS := -fsanitize=address -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZE),undefined)
  B ?= build/ubsan
  SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZE),thread)
  B ?= build/tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  $(error SANITIZE must be address, undefined or thread, not '$(SANITIZE)')
endif

CC := gcc
OPT ?= -O2
CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -fvisibility=hidden -pthread \
          -MMD -MP -Isim/include -Isim/lib $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)
LDLIBS := -luuid

ifeq ($(V),1)
  Q :=
  say :=
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
endif

DEB_BUILD := gcc make uuid-dev libcriterion-dev
DEB_TEST := $(DEB_BUILD) python3-pytest

LIB_SRC := $(wildcard sim/lib/*.c)
DAEMON_SRC := $(filter-out sim/daemon/main.c,$(wildcard sim/daemon/*.c))
UNIT_SRC := $(wildcard sim/tests/test_*.c)
IT_SRC := $(wildcard sim/tests/it_*.c) sim/tests/fixture.c

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LIB_OBJ := $(call obj,$(LIB_SRC))
LIB_PIC := $(patsubst %.c,$(B)/pic/%.o,$(LIB_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))

LIBA := $(B)/lib/libhvsim.a
LIBSO := $(B)/lib/libhvsim.so
BINS := $(B)/bin/hvsimd $(B)/bin/hvsimctl $(B)/bin/hvcat $(B)/bin/hvsim-bench
EXAMPLES := $(B)/bin/host-service $(B)/bin/guest-service

.SECONDARY:
.PHONY: all deps test-deps test unit integration harness conformance bench-quick fuzz clean
all: $(LIBA) $(LIBSO) $(BINS) $(EXAMPLES)

deps:
	$(Q)sh ci/deps.sh $(DEB_BUILD)
test-deps:
	$(Q)sh ci/deps.sh $(DEB_TEST)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS) -c -o $@ $<
$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$< [pic])$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBSO): $(LIB_PIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bin/hvsimd: $(B)/obj/sim/daemon/main.o $(DAEMON_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/%: $(B)/obj/sim/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/%: $(B)/obj/examples/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/unit: $(call obj,$(UNIT_SRC)) $(DAEMON_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion
$(B)/tests/integration: $(call obj,$(IT_SRC)) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# Criterion prints its own closing line ("Synthesis: Tested: N | Passing: N | Failing: N").
unit: test-deps $(B)/tests/unit
	$(Q)$(B)/tests/unit --jobs=2
integration: test-deps all $(B)/tests/integration
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) $(B)/tests/integration --jobs=2

# The main job: the suite against the simulator, which it starts itself.
conformance: test-deps all $(B)/tests/integration
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) $(B)/tests/integration --jobs=2

# pytest harness: the command-line tools and examples, as a user runs them.
harness: test-deps all
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) /usr/bin/python3 -m pytest -q -p no:cacheprovider harness

ifeq ($(SANITIZE),thread)
# Criterion cannot start under ThreadSanitizer (its shared arena is refused),
# so a thread build runs the harness (real programs, the library's helper
# thread) and the benchmark, and fails on the first race.
test: test-deps all
	@echo "note: SANITIZE=thread runs the harness and hvsim-bench; Criterion suites cannot start under TSan"
	$(Q)TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(MAKE) --no-print-directory harness
	$(Q)TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(B)/bin/hvsim-bench --rounds 1 --seconds 0.2 all
else
test: test-deps
	$(Q)$(MAKE) --no-print-directory unit integration harness
endif

# Connection rate and 1-byte round trip beside AF_UNIX and TCP, in one run.
bench-quick: all
	$(Q)$(B)/bin/hvsim-bench --rounds 5 all

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
