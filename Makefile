# s3-batch and s3-sync: GNU make + pkg-config.
# make [all] | check | check-unit | check-integration | install | clean | asan | valgrind | demo | setup

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
PKG_CONFIG ?= pkg-config
PKGS	= libcurl libcrypto libarchive libcjson uuid expat
VERSION	= 0.1.0

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS))

CFLAGS	?= -O2 -g
WARN	= -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-nonliteral \
	  -Wmissing-prototypes -Wstrict-prototypes
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DS3B_VERSION='"$(VERSION)"' $(WARN) \
	  -Iinclude $(PKG_CFLAGS) $(SANITIZE) $(CFLAGS)
ALL_LDFLAGS = $(SANITIZE) $(LDFLAGS)
LIBS	= $(PKG_LIBS) -lpthread

B	?= build
MAINS	= src/s3-batch.c src/s3-sync.c
TOOL_SRCS = $(wildcard src/tool_*.c)
LIB_SRCS = $(filter-out $(MAINS) $(TOOL_SRCS),$(wildcard src/*.c))
LIB_OBJS = $(LIB_SRCS:src/%.c=$(B)/%.o)
TOOL_OBJS = $(TOOL_SRCS:src/%.c=$(B)/%.o)
LIB	= $(B)/libs3batch.a
BINS	= $(B)/s3-batch $(B)/s3-sync
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

all: $(BINS)

$(B)/%.o: src/%.c $(wildcard include/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/s3-batch: $(B)/s3-batch.o $(TOOL_OBJS) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/s3-sync: $(B)/s3-sync.o $(TOOL_OBJS) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: tests/unit/%.c tests/unit/check.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB) $(ALL_LDFLAGS) $(LIBS)

unit: $(UNIT_BINS)

check-unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

check-integration: $(BINS)
	@tests/integration/run.sh

check: check-unit check-integration

# The kill test (SIGKILL at 118 system calls) is opt-in until recorded
# multipart uploads cover the window before CreateMultipartUpload answers.
check-kill: $(BINS)
	@tests/integration/run.sh optin/test_kill

# Bad inputs and a full spool: opt-in while their last checks settle.
check-robust: $(BINS)
	@tests/integration/run.sh optin/test_inputs optin/test_diskfull

setup:
	scripts/setup.sh

demo: $(BINS)
	scripts/demo.sh

asan:
	$(MAKE) B=build-asan SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" CFLAGS="-O1 -g" check-unit

valgrind: unit
	@VALGRIND="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    tests/unit/run.sh $(UNIT_BINS)

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 644 man/s3-batch.1 man/s3-sync.1 $(DESTDIR)$(MANDIR)/man1

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all unit check check-unit check-integration check-kill check-robust fuzz bench setup demo asan valgrind install clean
.SECONDARY:

# libFuzzer targets (clang): each for FUZZ_SECONDS (default 60).
fuzz:
	$(MAKE) -f tests/fuzz/Makefile.fuzz fuzz

# Benchmarks against the peers (awscli, rclone, s3cmd, s5cmd) on a local
# radosgw; scripts/setup-bench.sh installs the peers. Not part of check.
bench: all
	scripts/setup-bench.sh
	tests/bench/run.sh
