# The two commands: `make test` and `make run`. Everything else is a helper.
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all build test run sanitize test-sanitize fuzz bench-http bench-registry bench-gateway format clean bootstrap

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1

# Until the bookstore lands, the main job is the hello example.
RUN_LISTEN ?= 127.0.0.1:8000
run: build
	@echo "make run: starting hello on http://$(RUN_LISTEN) (Ctrl-C stops it)"
	@echo "  try: curl http://$(RUN_LISTEN)/hello/world"
	@echo "       open http://$(RUN_LISTEN)/docs"
	@exec $(BUILD)/bin/hello --listen $(RUN_LISTEN) --log-format text

# The same suite built with AddressSanitizer and UBSan.
test-sanitize: bootstrap
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DMICROC_SANITIZE=address,undefined $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 1

# libFuzzer builds of tests/fuzz (clang); run one with build-fuzz/fuzz/fuzz_<name> CORPUS
fuzz: bootstrap
	CC=clang cmake -S . -B build-fuzz -G Ninja -DMICROC_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)

bench-http: build
	bench/http/run

bench-registry: build
	bench/registry/run

bench-gateway: build
	bench/gateway/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
