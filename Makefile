# Thin wrapper around CMake: deps, build, run, test, bench.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
BUILD_DEB  ?= build-deb
FUZZ_TIME  ?= 600
# libFuzzer harnesses (fuzz/fuzz_<name>.c); `make fuzz FUZZERS=elf` runs one.
FUZZERS    ?= $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
MAKEFLAGS  += --no-print-directory
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= examples/host.ini

# Debian packages the build, the tests and the benchmarks need.
DEB_PACKAGES = build-essential cmake pkg-config libffi-dev \
               libsqlite3-dev sqlite3 libhttp-parser-dev libmicrohttpd-dev libjansson-dev \
               libcmocka-dev wrk valgrind curl python3-prometheus-client chromium \
               clang libclang-rt-dev python3-jsonschema libsystemd-dev systemd lintian file openssl \
               libcurl4-openssl-dev libarchive-dev libsodium-dev libcmark-dev python3-websocket

BENCH_PACKAGES = nginx-core libnginx-mod-http-lua lua-cjson

.PHONY: all deps bench-deps build run test test-asan test-tsan fuzz bench install deb clean

all: build

# Installs the Debian packages of $(1) that are missing (apt-get; sudo when not root).
# $(2) = yes keeps services from starting while they are installed (nginx would
# otherwise start on port 80 from its package scripts; the benchmarks start their
# own on 127.0.0.1): a policy-rc.d that refuses, as Debian's invoke-rc.d reads it,
# only when the machine has none of its own.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  policy=""; \
	  if [ "$(2)" = yes ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
	    policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$policy >/dev/null; \
	    $$SUDO chmod 755 $$policy; \
	  fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	  rc=$$?; [ -z "$$policy" ] || $$SUDO rm -f $$policy; exit $$rc; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES),no)

# What only `make bench` needs: nginx with its Lua module and lua-cjson (the
# nginx+Lua baseline of the HTTP benchmark).
bench-deps:
	$(call install_missing,$(BENCH_PACKAGES),yes)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/plughost run -c $(CONFIG)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) test-asan
	$(MAKE) test-tsan

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DPH_SANITIZE=ON -DPH_BUILD_BENCH=OFF
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# The concurrency tests (gate, router, hot reload, configuration reload, call limits,
# HTTP) under ThreadSanitizer: any reported race fails the run.
test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DPH_TSAN=ON -DPH_BUILD_BENCH=OFF
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
	  ctest --output-on-failure -j $(JOBS) -R 'test_(gate|router|reload|host|http|residue)|e2e_(sighup|pkgmgr|hostile_http|http_engine|slow_clients|outlive|limits|rogue)'

# Each harness for FUZZ_TIME seconds (default 600) with libFuzzer, ASan and
# UBSan: new inputs go to $(BUILD_FUZZ)/corpus/<name>, findings (crash-*,
# leak-*, timeout-*) to $(BUILD_FUZZ)/findings/<name>/. Copy a finding into
# fuzz/corpus/<name>/ once fixed: ctest replays it from then on.
fuzz: deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPH_FUZZ=ON \
	  -DPH_BUILD_TESTS=OFF -DPH_BUILD_BENCH=OFF
	cmake --build $(BUILD_FUZZ) -j $(JOBS)
	@for f in $(FUZZERS); do \
	  mkdir -p $(BUILD_FUZZ)/corpus/$$f $(BUILD_FUZZ)/findings/$$f; \
	  echo "fuzz_$$f: $(FUZZ_TIME) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./$(BUILD_FUZZ)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(BUILD_FUZZ)/findings/$$f/ \
	    $(BUILD_FUZZ)/corpus/$$f fuzz/corpus/$$f || exit 1; \
	done

# Every figure with its target and ok/MISS, then a summary table.
# `make bench ONLY=router,crud` runs some pieces (bench/run.sh lists them);
# `make bench STRICT=1` exits non-zero on a MISS.
bench: build bench-deps
	ONLY="$(ONLY)" STRICT="$(STRICT)" ./bench/run.sh $(BUILD)

install: build
	cmake --install $(BUILD)

# plughost_VERSION_amd64.deb and plughost-dev_VERSION_all.deb in $(BUILD_DEB)
# (CPack, cmake/Deb.cmake): an optimised build for prefix /usr.
deb: deps
	cmake -S . -B $(BUILD_DEB) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	  -DPH_BUILD_TESTS=OFF -DPH_BUILD_BENCH=OFF
	cmake --build $(BUILD_DEB) -j $(JOBS)
	cd $(BUILD_DEB) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ) $(BUILD_DEB)
