# hvsim: the one, non-recursive Makefile. Out-of-tree build under build/
# (build/asan, build/ubsan, build/tsan with SANITIZE=address|undefined|thread;
# build/mutant with MUTANTS=1). `make help` lists the targets: each one's line
# is the "#>" comment above it. V=1 shows commands.

SANITIZE ?=
# MUTANTS=1: the mutant build (sim/proto/include/hvproto/mutants.h), in its
# own folder; the only build in which a rule can be broken on purpose.
MUTANTS ?=
ifeq ($(MUTANTS),1)
  B ?= build/mutant
  MUTFLAGS := -DHVSIM_MUTANTS
else ifneq ($(MUTANTS),)
  $(error MUTANTS must be 1 or empty, not '$(MUTANTS)')
endif
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
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -fvisibility=hidden -pthread \
          -MMD -MP -Isim/include $(SANFLAGS) $(MUTFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)
LDLIBS := -luuid

ifeq ($(V),1)
  Q :=
  say :=
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
endif

# The one version (sim/include/hvsim/hvsim.h): SONAME, hvsim.pc, --version.
ver = $(shell sed -n 's/^\#define HVSIM_VERSION_$(1) \([0-9]*\)$$/\1/p' sim/include/hvsim/hvsim.h)
VERSION := $(call ver,MAJOR).$(call ver,MINOR).$(call ver,PATCH)
SOMAJOR := $(call ver,MAJOR)

DEB_BUILD := gcc make uuid-dev libcriterion-dev libseccomp-dev
DEB_TEST := $(DEB_BUILD) pkgconf g++ python3-pytest clang libclang-rt-14-dev gcc-mingw-w64-x86-64 socat ncat strace \
            golang-go golang-github-mdlayher-vsock-dev golang-golang-x-sys-dev musl-tools \
            valgrind python3-matplotlib man-db systemd gcc-aarch64-linux-gnu

PROTO_SRC := $(wildcard sim/proto/*.c)
LIB_SRC := $(wildcard sim/lib/*.c)
DAEMON_SRC := $(filter-out sim/daemon/main.c,$(wildcard sim/daemon/*.c))
VHOST_SRC := $(filter-out sim/vhost/main.c,$(wildcard sim/vhost/*.c))
UNIT_SRC := $(wildcard sim/tests/test_*.c)
IT_SRC := $(wildcard sim/tests/it_*.c) sim/tests/fixture.c

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
LIB_OBJ := $(call obj,$(LIB_SRC)) $(PROTO_OBJ)
LIB_PIC := $(patsubst %.c,$(B)/pic/%.o,$(LIB_SRC) $(PROTO_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))
VHOST_OBJ := $(call obj,$(VHOST_SRC))

PROTOA := $(B)/lib/libhvsim-proto.a
LIBA := $(B)/lib/libhvsim.a
LIBSO := $(B)/lib/libhvsim.so
BINS := $(B)/bin/hvsimd $(B)/bin/hvsimctl $(B)/bin/hvcat $(B)/bin/hvsim-bench $(B)/bin/hvsim-modebench $(B)/bin/hvsim-vhost $(B)/bin/hvsim-soak \
        $(B)/bin/hvsim-qemu-bench
EXAMPLES := $(B)/bin/host-service $(B)/bin/guest-service

.SECONDARY:
.PHONY: help install uninstall soak all deps test-deps test unit integration harness conformance conformance-mutants agents agent-windows \
        vm-image qemu-test bench bench-ci bench-compare \
        bench-quick fuzz clean cross-arm64
#> all                  build the libraries, daemon, back-end, tools, interposer, examples and agent
all: $(LIBA) $(LIBSO) $(BINS) $(EXAMPLES) $(B)/bin/hvsim-agent

#> deps                 install the Debian packages the build needs
deps:
	$(Q)sh ci/deps.sh $(DEB_BUILD)
#> test-deps            install the Debian packages the tests need
test-deps:
	$(Q)sh ci/deps.sh $(DEB_TEST)

# Each room sees only the include folders it needs (docs/architecture.md):
# libhvsim-proto (sim/proto) is shared by all; the library's internals stay in
# sim/lib; the adapters (interposer, back-end) get the library's one door.
ROOM_DIRS = $(B)/obj/$(1)/%.o $(B)/pic/$(1)/%.o $(B)/pic-plain/$(1)/%.o
$(call ROOM_DIRS,sim/proto): CFLAGS += -Isim/proto/include
$(call ROOM_DIRS,sim/lib): CFLAGS += -Isim/proto/include -Isim/lib/adapter
$(call ROOM_DIRS,sim/daemon): CFLAGS += -Isim/proto/include
$(call ROOM_DIRS,sim/vhost): CFLAGS += -Isim/proto/include -Isim/lib/adapter
$(call ROOM_DIRS,sim/tools): CFLAGS += -Isim/proto/include
$(call ROOM_DIRS,sim/preload): CFLAGS += -Isim/lib/adapter -Isim/proto/include
$(call ROOM_DIRS,sim/tests): CFLAGS += -Isim/proto/include -Isim/lib/adapter -Isim/daemon -Isim/vhost

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS) -c -o $@ $<
$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$< [pic])$(CC) $(CFLAGS) -fPIC -c -o $@ $<

$(PROTOA): $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBSO): $(LIB_PIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -shared $(LDFLAGS) -Wl,-soname,libhvsim.so.$(SOMAJOR) -o $@ $^ $(LDLIBS)

$(B)/bin/hvsimd: $(B)/obj/sim/daemon/main.o $(DAEMON_OBJ) $(PROTOA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/hvsim-vhost: $(B)/obj/sim/vhost/main.o $(VHOST_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/%: $(B)/obj/sim/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/%: $(B)/obj/examples/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/unit: $(call obj,$(UNIT_SRC)) $(DAEMON_OBJ) $(VHOST_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion
$(B)/tests/integration: $(call obj,$(IT_SRC)) $(B)/obj/sim/vhost/gateway.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# ---- the interposer (LD_PRELOAD), hvsim-run and hvsim-hybrid (sim/preload/) -----------------
# The interposer is loaded into programs built without a sanitizer (socat,
# python3), so it never carries one: a SANITIZE build gives it plain PIC objects.
PRELOAD_SO := $(B)/lib/libhvsim-preload.so
PRELOAD_MAP := sim/preload/libhvsim-preload.map
ifeq ($(SANITIZE),)
PRELOAD_OBJ := $(B)/pic/sim/preload/hvsim_preload.o $(LIB_PIC)
else
PRELOAD_OBJ := $(patsubst %.c,$(B)/pic-plain/%.o,sim/preload/hvsim_preload.c $(LIB_SRC) $(PROTO_SRC))
$(B)/pic-plain/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$< [plain pic])$(CC) $(filter-out $(SANFLAGS),$(CFLAGS)) -fPIC -c -o $@ $<
endif
all: $(PRELOAD_SO) $(B)/bin/hvsim-run $(B)/bin/hvsim-hybrid
$(PRELOAD_SO): $(PRELOAD_OBJ) $(PRELOAD_MAP)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -shared -pthread -Wl,--version-script=$(PRELOAD_MAP) -o $@ $(PRELOAD_OBJ) $(LDLIBS)
# The seccomp filters are built with libseccomp for the target architecture (vsock_filter.c).
$(B)/bin/hvsim-run: $(B)/obj/sim/preload/hvsim_run.o $(B)/obj/sim/preload/supervisor.o \
                    $(B)/obj/sim/preload/vsock_filter.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lseccomp
$(B)/bin/hvsim-hybrid: $(B)/obj/sim/preload/hvsim_hybrid.o $(B)/obj/sim/preload/vsock_filter.o $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lseccomp

# ---- the conformance agent (conformance/README.md) --------------------------------------
# One case table, three backends: libhvsim (the simulator), the Linux kernel's
# AF_VSOCK (static, for QEMU guests: it refuses to start outside them) and
# Winsock (cross-built; it runs on a Hyper-V host or a Windows VM).
CF_CORE := $(wildcard conformance/agent/*.c) $(wildcard conformance/cases/*.c) conformance/backend_common.c
CF_HDRS := $(wildcard conformance/*.h conformance/agent/*.h conformance/cases/*.h) sim/include/hvsim/errmap.h
CF_VERSION := -DHVSIM_VERSION_TEXT='"$(VERSION)"'
$(B)/obj/conformance/%.o: CFLAGS += -Iconformance $(CF_VERSION)
$(B)/bin/hvsim-agent: $(call obj,$(CF_CORE) conformance/backend_hvsim.c conformance/backend_posix.c) $(LIBA)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
CF_NATIVE := conformance/backend_native.c conformance/backend_posix.c conformance/backend_noadmin.c
CF_WINSOCK := conformance/backend_winsock.c conformance/backend_noadmin.c
build/static/hvsim-agent-linux: $(CF_CORE) $(CF_NATIVE) $(CF_HDRS)
	@mkdir -p $(dir $@)
	$(call say,STATIC,$@)$(CC) -static -std=c11 -D_GNU_SOURCE -O2 $(WARN) -pthread -Iconformance $(CF_VERSION) -o $@ \
	    -Isim/include $(CF_CORE) $(CF_NATIVE)
build/win/hvsim-agent.exe: $(CF_CORE) $(CF_WINSOCK) $(CF_HDRS)
	@mkdir -p $(dir $@)
	$(call say,MINGW,$@)x86_64-w64-mingw32-gcc -std=c11 -O2 $(WARN) -Iconformance $(CF_VERSION) -Isim/include -o $@ \
	    $(CF_CORE) $(CF_WINSOCK) -lws2_32 -ladvapi32
# The example services build for Windows unchanged (#ifdef _WIN32).
build/win/%.exe: examples/%.c
	@mkdir -p $(dir $@)
	$(call say,MINGW,$@)x86_64-w64-mingw32-gcc -std=c11 -O2 $(WARN) -o $@ $< -lws2_32 -lrpcrt4
WIN_EXAMPLES := build/win/host-service.exe build/win/guest-service.exe
#> agent-windows        cross-build the Windows conformance agent and examples (MinGW)
agent-windows: test-deps build/win/hvsim-agent.exe $(WIN_EXAMPLES)
#> agents               build the static Linux agent and the Windows agent and examples
agents: test-deps build/static/hvsim-agent-linux build/win/hvsim-agent.exe $(WIN_EXAMPLES)

# Criterion prints its own closing line ("Synthesis: Tested: N | Passing: N | Failing: N").
#> unit                 the Criterion unit tests (router, protocol, vhost, parsers)
# A sanitizer's leak check ignores what Criterion itself never frees (ci/lsan.supp).
LSAN_ENV := LSAN_OPTIONS=suppressions=$(abspath ci/lsan.supp)
unit: test-deps $(B)/tests/unit
	$(Q)$(LSAN_ENV) $(B)/tests/unit --jobs=2
#> integration          the Criterion integration tests against a real hvsimd
integration: test-deps all $(B)/tests/integration
	$(Q)$(LSAN_ENV) HVSIM_BIN=$(abspath $(B)/bin) $(B)/tests/integration --jobs=2

# The main job: the suite against the simulator, which it starts itself.
# TARGET=sim|qemu|hyperv; hyperv builds the reports from a Hyper-V host's
# report file: INGEST=host.jsonl. Reports land in $(B)/conformance/.
TARGET ?= sim
#> conformance          the catalogue against the simulator (TARGET=qemu|hyperv, INGEST=FILE; KERNEL: the sim virtio VM's)
conformance: conformance-deps all $(if $(filter qemu,$(TARGET)),$(if $(INGEST),,vm-image))
	$(Q)/usr/bin/python3 conformance/run.py --target $(TARGET) --bin $(abspath $(B)/bin) \
	    --out $(B)/conformance$(if $(filter hyperv,$(TARGET)),,$(if $(filter 6.1,$(KERNEL)),,/kernel-$(KERNEL))) \
	    $(if $(filter qemu,$(TARGET)),--vm-dir $(abspath $(VM_DIR))) $(if $(INGEST),--ingest $(INGEST)) \
	    $(if $(filter sim,$(TARGET)),--decision-log $(B)/conformance/decisions.jsonl) \
	    $(if $(filter sim,$(TARGET)),--sim-kernel $(KERNEL))
# Every named mutant (hvsimd --list-mutants of the mutant build) against the
# suite; at least 90% must be caught. The mutant build's own unit tests of
# mutants run first.
#> conformance-mutants  the mutant build against the catalogue: every mutant must be killed
conformance-mutants: test-deps
	$(Q)$(MAKE) --no-print-directory MUTANTS=1 all build/mutant/tests/unit
	$(Q)build/mutant/tests/unit --jobs=2 --filter 'route/mutant_*'
	$(Q)/usr/bin/python3 conformance/mutants.py --bin $(abspath build/mutant/bin) --out build/mutant/conformance --jobs 2

# ---- QEMU guests (vm-images/README.md) --------------------------------------------------------
# The guest image: Debian's cloud kernel (downloaded, never installed), its
# vsock modules and a busybox initramfs holding the static agent. The kernel
# cache is shared by all sanitizer builds.
# KERNEL picks one of vm-images/kernels.lock: 6.1 (Debian 12, the default and
# the one `make test` boots), 6.12 (Debian 13), newest (Debian unstable).
KERNELS := 6.1 6.12 newest
KERNEL ?= 6.1
ifeq ($(filter $(KERNEL),$(KERNELS)),)
$(error KERNEL=$(KERNEL): choose one of $(KERNELS))
endif
vm_dir = $(B)/vm$(if $(filter 6.1,$(1)),,-$(1))
VM_DIR := $(call vm_dir,$(KERNEL))
VM_EXTRA_BINS := build/static/hvsim-agent-linux
#> vm-image             the QEMU guest image (Debian kernel, busybox, the static agent; KERNEL=6.1|6.12|newest)
vm-image: build/static/hvsim-agent-linux
	$(Q)HVSIM_VM_KERNEL=$(KERNEL) HVSIM_VM_CACHE=$(abspath build/vm-cache) sh vm-images/build.sh $(VM_DIR) $(VM_EXTRA_BINS)
# Every QEMU test, once per kernel of KERNELS (each its own image); a missing
# image or QEMU fails instead of skipping.
#> qemu-test            every QEMU test on each kernel (6.1, 6.12, newest; boots guests; slow)
qemu-test: test-deps all
	$(Q)for k in $(KERNELS); do \
	    echo "==== qemu-test: kernel $$k"; \
	    $(MAKE) --no-print-directory vm-image KERNEL=$$k || exit 1; \
	    d=$(abspath $(B))/vm; [ $$k = 6.1 ] || d=$$d-$$k; \
	    HVSIM_BIN=$(abspath $(B)/bin) HVSIM_VM_DIR=$$d HVSIM_REQUIRE_QEMU=1 \
	        /usr/bin/python3 -m pytest -q -p no:cacheprovider -m qemu harness || exit 1; \
	done

# pytest harness: the tools, examples, interposer, conformance (sim) and the
# QEMU smoke tests, as a user runs them; the slow QEMU timing runs are left
# to qemu-test.
# ---- the supervisor (hvsim-run --supervise): its tests alone; they are also in harness ----
.PHONY: test-supervisor
#> test-supervisor      the supervisor's tests: stand-in family, fail-closed, static C and Go programs, mixed trees
test-supervisor: test-deps all
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) /usr/bin/python3 -m pytest -q -p no:cacheprovider harness/test_supervisor.py harness/test_mixed_trees.py

#> harness              the pytest harness: tools, interposer, layout, docs, conformance, QEMU smoke
harness: test-deps all vm-image
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) HVSIM_VM_DIR=$(abspath $(VM_DIR)) HVSIM_REQUIRE_QEMU=1 \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider -m "not slow" harness

#> test                 every test (SANITIZE=address|undefined|thread for a sanitizer build)
ifeq ($(SANITIZE),thread)
# Criterion cannot start under ThreadSanitizer (its shared arena is refused),
# so a thread build runs the harness (real programs, the library's helper
# thread) and the benchmark, and fails on the first race.
test: test-deps all
	@echo "note: SANITIZE=thread runs the harness and hvsim-bench; Criterion suites cannot start under TSan"
	$(Q)TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(MAKE) --no-print-directory harness
	$(Q)TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(B)/bin/hvsim-bench --rounds 1 --seconds 0.2 all
	$(Q)TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(MAKE) --no-print-directory soak MINUTES=0.5
else
test: test-deps
	$(Q)/usr/bin/python3 ci/parts.py $(MAKE) unit integration harness agents cross-arm64 "fuzz FUZZ_SECONDS=5" "soak MINUTES=1"
endif

# ---- the arm64 cross-build: compiles and links, never runs ------------------------------------
# Debian's aarch64 gcc; libseccomp and uuid come from a private sysroot that
# ci/arm64-sysroot.sh downloads (apt-get download through an apt configuration
# of its own under build/cross-arm64/apt) and unpacks: the machine's apt
# architectures and sources stay as they are.
XB := build/cross-arm64
XSYS := $(abspath $(XB))/sysroot
XLIB := $(XSYS)/usr/lib/aarch64-linux-gnu
XPKGS := libseccomp-dev libseccomp2 uuid-dev libuuid1
$(XB)/sysroot/.done: ci/arm64-sysroot.sh
	$(call say,APT,$(XB)/sysroot)sh ci/arm64-sysroot.sh $(XB) $(XPKGS)
#> cross-arm64          compile and link every program and library for arm64 (aarch64-linux-gnu-gcc) into build/cross-arm64
cross-arm64: $(XB)/sysroot/.done
	$(Q)$(MAKE) --no-print-directory B=$(XB)/out CC=aarch64-linux-gnu-gcc SANITIZE= MUTANTS= \
	    EXTRA_CFLAGS="-isystem $(XSYS)/usr/include" LDLIBS="-L$(XLIB) -Wl,-rpath-link,$(XLIB) -luuid" all
	$(Q)file $(XB)/out/bin/hvsim-run | grep -q 'ARM aarch64' || { echo "cross-arm64: hvsim-run is not an arm64 program"; exit 1; }

# ---- benchmarks (bench/README.md) ---------------------------------------------------------------
# Every figure beside AF_UNIX, TCP and memcpy in the same run; JSON, table,
# PNG charts and HTML under build/bench/. bench-compare exits non-zero when
# NEW is slower than BASE beyond the rounds' own noise (or the count gates).
BASE ?= bench/baseline.json
NEW ?= build/bench/latest.json
# TARGET=qemu: a QEMU guest over vsock beside TCP over QEMU's user network
# (bench/qemu_target.py), into build/bench/qemu/.
#> bench                the full benchmark beside AF_UNIX and TCP (TARGET=qemu: a QEMU guest)
bench: test-deps all $(if $(filter qemu,$(TARGET)),vm-image)
	$(Q)/usr/bin/python3 bench/run.py --bin $(abspath $(B)/bin) \
	    $(if $(filter qemu,$(TARGET)),--target qemu --vm-dir $(abspath $(VM_DIR)) --out build/bench/qemu,--out build/bench)
#> bench-ci             the short benchmark gated on instruction and system-call counts
bench-ci: test-deps all
	$(Q)/usr/bin/python3 bench/run.py --ci --bin $(abspath $(B)/bin) --out build/bench/ci
	$(Q)/usr/bin/python3 bench/compare.py --wallclock report $(BASE) build/bench/ci/latest.json
#> bench-compare        compare NEW against BASE (bench/baseline.json)
bench-compare:
	$(Q)/usr/bin/python3 bench/compare.py $(BASE) $(NEW)
# Connection rate and 1-byte round trip beside AF_UNIX and TCP, in one run.
#> bench-quick          connection rate and round trip beside AF_UNIX and TCP
bench-quick: all
	$(Q)$(B)/bin/hvsim-bench --rounds 5 all

# Fuzzing: one libFuzzer target per parser (sim/fuzz/fuzz_<name>.c), built
# with clang into build/fuzz/, seeded from sim/fuzz/corpus/<name>/.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` runs a short round.
FUZZ_SECONDS ?= 60
FUZZ_NAMES := $(patsubst sim/fuzz/fuzz_%.c,%,$(wildcard sim/fuzz/fuzz_*.c))
FUZZ_EXTRA_persist := sim/daemon/persist.c
FUZZ_EXTRA_vhost_ring := $(VHOST_SRC)
FUZZ_EXTRA_vhost_msg := $(VHOST_SRC)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
               -Isim/include -Isim/proto/include -Isim/lib/adapter -Isim/daemon -Isim/vhost
build/fuzz/%: sim/fuzz/fuzz_%.c $(LIB_SRC) $(PROTO_SRC) $(wildcard sim/daemon/*.[ch] sim/vhost/*.[ch])
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(PROTO_SRC) $(FUZZ_EXTRA_$*) -luuid -pthread

#> fuzz                 every libFuzzer target for FUZZ_SECONDS (default 60)
fuzz: test-deps $(addprefix build/fuzz/,$(FUZZ_NAMES))
	$(Q)for n in $(FUZZ_NAMES); do \
	    mkdir -p build/fuzz/corpus-$$n && cp -n sim/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null; \
	    echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build/fuzz/corpus-$$n 2>build/fuzz/$$n.log \
	        || { tail -30 build/fuzz/$$n.log; exit 1; }; \
	done

#> clean                remove build/
# ---- install (make install PREFIX=/usr/local DESTDIR=) -------------------------------------
# Binaries, the shared library with its SONAME and links, the static one, the
# public headers, hvsim.pc, and the interposer where hvsim-run looks for it
# (../lib beside the binary).
PREFIX ?= /usr/local
DESTDIR ?=
INST_BINS := hvsimd hvsimctl hvcat hvsim-run hvsim-hybrid hvsim-vhost
INST_HDRS := sim/include/hvsim/hvsim.h sim/include/hvsim/hvsocket.h sim/include/hvsim/errmap.h
I_BIN = $(DESTDIR)$(PREFIX)/bin
I_LIB = $(DESTDIR)$(PREFIX)/lib
I_INC = $(DESTDIR)$(PREFIX)/include/hvsim
# One hand-written man page per installed binary (sim/man/NAME.1; @VERSION@ filled in).
INST_MAN := $(addprefix sim/man/,$(addsuffix .1,$(INST_BINS)))
I_MAN = $(DESTDIR)$(PREFIX)/share/man/man1
# hvsimd's systemd units (Type=notify): a system and a user instance.
I_SYSTEMD = $(DESTDIR)$(PREFIX)/lib/systemd
#> install              install into $(DESTDIR)$(PREFIX) (PREFIX=/usr/local): binaries, libraries, headers, hvsim.pc, man pages, systemd units, Python package
install: all
	$(Q)install -d $(I_PY)/hvsim
	$(Q)install -m 0644 $(PY_SRC) $(I_PY)/hvsim/
	$(Q)install -d $(I_BIN) $(I_LIB) $(I_LIB)/pkgconfig $(I_INC)
	$(Q)for b in $(INST_BINS); do install -m 0755 $(B)/bin/$$b $(I_BIN)/$$b; done
	$(Q)install -m 0755 $(LIBSO) $(I_LIB)/libhvsim.so.$(VERSION)
	$(Q)ln -sf libhvsim.so.$(VERSION) $(I_LIB)/libhvsim.so.$(SOMAJOR)
	$(Q)ln -sf libhvsim.so.$(SOMAJOR) $(I_LIB)/libhvsim.so
	$(Q)install -m 0644 $(LIBA) $(I_LIB)/libhvsim.a
	$(Q)install -m 0755 $(PRELOAD_SO) $(I_LIB)/libhvsim-preload.so
	$(Q)install -m 0644 $(INST_HDRS) $(I_INC)/
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' sim/hvsim.pc.in > $(I_LIB)/pkgconfig/hvsim.pc
	$(Q)install -d $(I_MAN)
	$(Q)for m in $(INST_MAN); do sed 's|@VERSION@|$(VERSION)|' $$m > $(I_MAN)/$$(basename $$m) || exit 1; done
	$(Q)install -d $(I_SYSTEMD)/system $(I_SYSTEMD)/user
	$(Q)sed 's|@PREFIX@|$(PREFIX)|' sim/systemd/hvsimd.service.in > $(I_SYSTEMD)/system/hvsimd.service
	$(Q)sed 's|@PREFIX@|$(PREFIX)|' sim/systemd/hvsimd-user.service.in > $(I_SYSTEMD)/user/hvsimd.service
#> uninstall            remove what install put into $(DESTDIR)$(PREFIX)
uninstall:
	$(Q)for b in $(INST_BINS); do rm -f $(I_BIN)/$$b; done
	$(Q)rm -f $(I_LIB)/libhvsim.so* $(I_LIB)/libhvsim.a $(I_LIB)/libhvsim-preload.so $(I_LIB)/pkgconfig/hvsim.pc
	$(Q)rm -f $(addprefix $(I_INC)/,$(notdir $(INST_HDRS))) $(addprefix $(I_MAN)/,$(notdir $(INST_MAN)))
	$(Q)rm -f $(I_SYSTEMD)/system/hvsimd.service $(I_SYSTEMD)/user/hvsimd.service
	$(Q)rmdir $(I_INC) 2>/dev/null || true
	$(Q)rm -f $(addprefix $(I_PY)/hvsim/,$(notdir $(PY_SRC))) && rm -rf $(I_PY)/hvsim/__pycache__
	$(Q)rmdir $(I_PY)/hvsim 2>/dev/null || true

# ---- Python and CI users (sim/python/hvsim, examples/pytest-suite, examples/ci) -------------
# The Python package (standard library only): Windows CPython's AF_HYPERV on
# the simulator (python3 -m hvsim run), the pytest plugin (hvsim.pytest_plugin)
# and the CI steps (examples/ci/ci.sh). `make install` puts it into a
# site-packages-style folder under PREFIX; `make harness` runs its tests
# (harness/test_python_compat.py, test_ci_recipe.py: the example suite and the
# CI recipes' steps, test_conformance_sim.py: shards merged).
PY_SRC := $(wildcard sim/python/hvsim/*.py)
I_PY = $(DESTDIR)$(PREFIX)/lib/python3/dist-packages
# What `make conformance` needs and no more (not the whole test tool set):
# the build, Python 3, and socat for the QEMU target's control channel.
DEB_CONFORMANCE := $(DEB_BUILD) python3 $(if $(filter qemu,$(TARGET)),socat)
#> conformance-deps     install the Debian packages make conformance needs (only those)
conformance-deps:
	$(Q)sh ci/deps.sh $(DEB_CONFORMANCE)
#> python-test          the Python package's tests, the example pytest suite and the CI recipes' steps
python-test: all
	$(Q)HVSIM_BIN=$(abspath $(B)/bin) PYTHONPATH=sim/python /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	    harness/test_python_compat.py harness/test_ci_recipe.py examples/pytest-suite
.PHONY: conformance-deps python-test
# ---- end of the Python and CI block ----------------------------------------------------------

# Soak: checksummed streams under random faults (ci/soak.py); reports,
# the PNG of descriptors and memory, under $(B)/soak/.
MINUTES ?= 1
#> soak                 MINUTES=N of checksummed streams under random faults (make test runs one minute)
soak: test-deps all
	$(Q)/usr/bin/python3 ci/soak.py --bin $(abspath $(B)/bin) --out $(B)/soak --minutes $(MINUTES) $(if $(SANITIZE),--sanitizer $(SANITIZE))

#> help                 this list
help:
	@sed -n 's/^#> /  make /p' $(firstword $(MAKEFILE_LIST))

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
