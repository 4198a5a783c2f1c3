# Thin wrapper over Meson/Ninja for the README's two commands.
#   make run    install what is missing, build, start a demo server on localhost
#   make test   install what is missing, build (gcc, and clang with ASan+UBSan),
#               run unit and integration tests in both builds
#   make fuzz   build the libFuzzer targets and run each for FUZZ_SECONDS
#   make deb    build the Debian package in build-deb/ (docs/install.md)
#   make test-deb  build it and check it (tests/deb/test_deb.py)

FUZZ_SECONDS ?= 20
MESON ?= meson
# Integration tests run in parallel (pytest-xdist); each worker takes its own
# share of port bases (tests/integration/conftest.py).  --dist loadfile keeps
# each file on one worker, in order: module-scoped servers carry state
# (the login limiter) from one test to the next.
PYTEST_JOBS ?= 4
PYTEST = /usr/bin/python3 -m pytest -n $(PYTEST_JOBS) --dist loadfile

.PHONY: all deps build build-asan run test unit integration fuzz bench deb test-deb clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@test -f build/build.ninja || CC=gcc $(MESON) setup build --buildtype=debugoptimized >/dev/null
	@ninja -C build
	@sh scripts/build-web.sh build/web

build-asan: deps
	@test -f build-asan/build.ninja || CC=clang $(MESON) setup build-asan \
		-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null
	@ninja -C build-asan

run: build
	@sh scripts/run-demo.sh build/tern

unit: build build-asan
	$(MESON) test -C build --print-errorlogs
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(MESON) test -C build-asan --print-errorlogs

integration: build build-asan
	TERN_BIN=$(CURDIR)/build/tern $(PYTEST) -q tests/integration
	TERN_BIN=$(CURDIR)/build-asan/tern TERN_ASAN=1 \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PYTEST) -q tests/integration

# A short fuzz run is part of the test suite: every parser's target must
# build and survive a few seconds of input.
test: unit integration
	$(MAKE) fuzz FUZZ_SECONDS=5
	$(MAKE) test-deb

fuzz: deps
	@test -f build-fuzz/build.ninja || CC=clang $(MESON) setup build-fuzz -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null
	@ninja -C build-fuzz
	@sh scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

# The package is built out of tree: the files git knows (committed or
# not, never ignored ones) are copied to build-deb/src, and
# dpkg-buildpackage writes the .deb next to it, build-deb/tern_*.deb.
deb: deps
	@rm -rf build-deb && mkdir -p build-deb/src
	@git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
		tar -cf - --null -T - | tar -xf - -C build-deb/src
	@cd build-deb/src && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -40 ../build.log; echo "make deb: failed, build-deb/build.log"; exit 1; }
	@ls build-deb/*.deb

# Not part of `make test`: building the package takes longer than the
# rest of the fast checks (docs/install.md "Testing the package").
test-deb: deb
	/usr/bin/python3 -m pytest -q tests/deb

bench: build
	@bash bench/smtp/run.sh

clean:
	rm -rf build build-asan build-fuzz build-deb
