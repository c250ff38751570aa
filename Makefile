# Two commands do all set-up on a fresh Debian machine with the Swift toolchain:
#   make run    install what is missing, build (release), start the whole stack (Ctrl-C stops it)
#   make test   the same set-up, then every test
SWIFT ?= swift
RELEASE_BIN = .build/release

.PHONY: setup build release run test bench proto proto-check clean

setup:
	@scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

run: release
	$(RELEASE_BIN)/atom up

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	$(RELEASE_BIN)/atom bench --json bench-results.json

proto: setup
	scripts/generate-proto

proto-check: setup
	scripts/generate-proto --check

clean:
	rm -rf .build .build-gen
