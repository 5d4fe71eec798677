# faultline: Jepsen-style tests for etcd-like stores.
# Needs Go 1.26 and a running Docker engine; nothing is pulled from a registry.

NODES      ?= 3
TIME_LIMIT ?= 60s
TARGET     ?= etcd
GO         ?= go

FAULTLINE = bin/faultline

.PHONY: test test-cluster sweep compare nightly bench serve lint build clean

build:
	CGO_ENABLED=0 $(GO) build -o $(FAULTLINE) ./cmd/faultline

# Unit tests, checker fixtures and the short container tests (they skip
# only when no Docker engine answers). Packages run one at a time so that
# container tests do not fight over the machine's two cores.
test: lint
	$(GO) test -p 1 -count=1 -timeout 45m ./...

ACTIONLINT = github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(ACTIONLINT) ci/nightly.yml

# A real test: NODES members of TARGET in containers, the register
# workload, the leader killed every 10 s. Exits 0 only on a valid verdict.
test-cluster: build
	./$(FAULTLINE) run --target $(TARGET) --nodes $(NODES) --workload register \
		--nemesis kill-leader --time-limit $(TIME_LIMIT)

# The scale sweep: the register test at 3, 5, 7 and 9 members, with no
# fault and with the leader killed every 5 s, 20 s each (measured: 4 minutes
# for one target on a 2-core machine). Writes results/sweep/<time>/.
SWEEP_TARGETS ?= etcd
sweep: build
	./$(FAULTLINE) sweep --nodes 3,5,7,9 --targets $(SWEEP_TARGETS) --nemeses none,kill-leader \
		--time-limit 20s -- --nemesis-interval 5s --nemesis-duration 3s

# Linearizable against serializable reads: the kv workload on 3 members,
# every worker pinned to one member, one member cut off every 5 s; 30 s per
# mode (about 1.5 minutes). Writes results/compare/<time>/.
compare: build
	./$(FAULTLINE) compare --read-consistency linearizable,serializable

# The nightly gate: every scenario of ci/nightly.json (144 runs: kvnode and
# etcd v3.5.35, v3.6.16, v3.7.3 x 2 sizes x 18 scenarios; 30 s of workload
# each, about 55 s with start, teardown and check: some 130 minutes on one
# machine, plus a few minutes per etcd release and build (plain, failpoints)
# the first time it is built, the image cache makes later nights skip that). One summary page under
# results/nightly/<time>/; exits non-zero on any invalid or unknown verdict,
# or any scenario that could not run.
nightly: build
	./$(FAULTLINE) nightly --matrix ci/nightly.json

# kvnode against etcd: put throughput and p50/p99 latency, 3 members,
# 64 clients, 256-byte values, medians of 5 alternating rounds, and ratios.
bench: build
	./$(FAULTLINE) bench --targets kvnode,etcd --nodes 3 --clients 64 --value-size 256

# The run index at http://127.0.0.1:8080/.
serve: build
	./$(FAULTLINE) serve

# Removes the containers, networks, volumes and local folders of runs whose
# harness is gone; live runs stay (./bin/faultline clean --all takes them too).
clean: build
	./$(FAULTLINE) clean
	rm -rf bin
