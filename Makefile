# miglet: the two commands a person needs are `make demo` and `make test`.
# Each installs what it needs (apt packages, Go-built tools) through `make deps`.
BUILD_DIR ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CTEST = ctest --test-dir $(BUILD_DIR) --output-on-failure --no-tests=error

.PHONY: kube-tools test-kube bench-kube
.PHONY: asan tsan fuzz fuzz-build
.PHONY: manifests images images-if-docker bundle e2e bench-e2e demo-channel
.PHONY: all deps build test unit integration format format-check bench bench-channel bench-agent bench-github bench-operator demo \
        cluster-tools cluster-up cluster-down cluster-smoke clean help

all: build

help:
	@echo "make demo          a one-node Kubernetes cluster here, miglet helm-installed on it, three"
	@echo "                   runners (GitHub stand-in); up until Ctrl-C, then all cleaned up"
	@echo "make test          format check, unit and integration tests built with ASan + UBSan and"
	@echo "                   -Werror, the images and their tests, the end-to-end tier on a real"
	@echo "                   node (installs deps)"
	@echo "make e2e           only the end-to-end tier (tests/e2e: the one-node cluster, helm, scenarios)"
	@echo "make demo-channel  the command channel alone: the controller and three agents on loopback"
	@echo "make unit | integration   one test tier, plain build ($(BUILD_DIR)/)"
	@echo "make asan          unit and integration tiers under ASan + UBSan (build-asan/)"
	@echo "make tsan          unit and integration tiers under TSan (build-tsan/; TSAN_TESTS=regex)"
	@echo "make fuzz          libFuzzer targets (clang, ASan + UBSan, build-fuzz/), FUZZ_SECONDS=60"
	@echo "                   each over fuzz/corpus/; FUZZ_MERGE=1 keeps new coverage there"
	@echo "make bench         bench/channel at 1,000 and 10,000 agents, bench/agent, bench/github,"
	@echo "                   bench/operator (prints figures)"
	@echo "make bench-e2e     runner pods on the one-node cluster: kubectl scale 0 -> 20 -> 0 (figures)"
	@echo "make deps          apt packages + Go-built tools (idempotent)"
	@echo "make build         cmake + ninja into $(BUILD_DIR)/"
	@echo "make format        clang-format the tree; format-check only checks"
	@echo "make cluster-up | cluster-down   a one-node cluster: control plane, kubelet + containerd,"
	@echo "                   scheduler, kube-proxy, CoreDNS (root, Docker; hack/cluster/README.md)"
	@echo "make manifests     the chart's crds/ from deploy/crds, deploy/manifests/ from the chart"
	@echo "make images        the two images (base images made locally by debootstrap first)"
	@echo "make bundle        the agent's self-contained bundle and its VM tarball, into $(BUILD_DIR)/"

deps:
	scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# make test builds the code once on the host, with ASan + UBSan and -Werror (build-asan/), and
# runs the unit and integration tiers there; the plain build is the one inside the images,
# which the images and end-to-end tiers run. (Building the host tree twice, plain and
# sanitized, ran the same tests twice and did not fit CI's 90 minutes with the end-to-end tier.)
test: deps format-check asan
	$(MAKE) images-if-docker
	$(ASAN_CTEST) -L images
	hack/cluster/build-tools.sh $(NODE_TOOLS)
	$(ASAN_CTEST) -L e2e

# make test builds the images where a Docker engine answers; images_test says why it is skipped
# where none does.
images-if-docker:
	@if docker info >/dev/null 2>&1; then $(MAKE) images; \
	else echo "images: no Docker engine answers here; not built (images_test is skipped)"; fi

# The integration tier includes the kube client's tests on a real apiserver: build (or find
# cached) the control-plane binaries first.

unit: build
	hack/cluster/build-tools.sh helm
	$(CTEST) -L unit

integration: build
	hack/cluster/build-tools.sh kube etcd helm
	$(CTEST) -L integration

# The unit and integration tiers built with AddressSanitizer and UndefinedBehaviorSanitizer
# (and -Werror) into their own folder. Debian's gRPC, protobuf and cpprestsdk are not
# instrumented; what they allocate is still checked where our code touches it.
ASAN_DIR ?= build-asan
# vptr checks are off: they need every library instrumented, and Debian's cpprestsdk hands out
# objects whose dynamic type the check cannot see.
SANITIZE = -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined \
  -fno-omit-frame-pointer
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/hack/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# -O1 -g1, as the sanitizers' documentation suggests: half the compile time of -O2 -g (the
# longest step of make test), line numbers still in every report.
ASAN_OPT = -O1 -g1 -DNDEBUG
ASAN_CTEST = $(SAN_ENV) ctest --test-dir $(ASAN_DIR) --output-on-failure --no-tests=error
asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGLET_WERROR=ON \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(ASAN_OPT)" \
	  -DCMAKE_CXX_FLAGS="$(SANITIZE)" -DCMAKE_EXE_LINKER_FLAGS="$(SANITIZE)"
	cmake --build $(ASAN_DIR) -j $(JOBS)
	hack/cluster/build-tools.sh helm
	$(ASAN_CTEST) -L unit
	hack/cluster/build-tools.sh kube etcd
	$(ASAN_CTEST) -L integration

# The same tiers under ThreadSanitizer into build-tsan/ (not part of make test: it doubles CI's
# time). Debian's gRPC, protobuf and abseil are not built with TSan, so the happens-before edges
# of their own locks are invisible to it; hack/sanitizers/tsan.supp names the reports that come
# only from that (each entry says why) and nothing of ours.
TSAN_DIR ?= build-tsan
# -Wno-tsan: boost::asio (inside cpprestsdk's headers) uses atomic_thread_fence, which GCC warns
# TSan cannot see; none of ours does.
# -U__SANITIZE_THREAD__ (compile only): protobuf's and abseil's headers change their classes'
# layout when it is defined (protobuf's MapFieldBase grows two members), which breaks against
# Debian's libraries built without it: google.protobuf.Struct's map, filled in by libprotobuf,
# crashed in our inlined lookups under TSan. Undefined, the headers match the libraries; TSan
# still instruments every access. MIGLET_TSAN turns on our happens-before annotations for
# hand-offs made inside gRPC (common/include/miglet/common/tsan.h).
TSAN_FLAGS = -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
TSAN_CXXFLAGS = $(TSAN_FLAGS) -U__SANITIZE_THREAD__ -DMIGLET_TSAN=1
TSAN_ENV = TSAN_OPTIONS=suppressions=$(CURDIR)/hack/sanitizers/tsan.supp:halt_on_error=0:second_deadlock_stack=1:exitcode=66
TSAN_TESTS ?= .
tsan: deps
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGLET_WERROR=ON \
	  -DCMAKE_CXX_FLAGS="$(TSAN_CXXFLAGS)" -DCMAKE_EXE_LINKER_FLAGS="$(TSAN_FLAGS)"
	cmake --build $(TSAN_DIR) -j $(JOBS)
	hack/cluster/build-tools.sh helm
	$(TSAN_ENV) ctest --test-dir $(TSAN_DIR) --output-on-failure --no-tests=error -L unit -R '$(TSAN_TESTS)'
	hack/cluster/build-tools.sh kube etcd
	$(TSAN_ENV) ctest --test-dir $(TSAN_DIR) --output-on-failure --no-tests=error -L integration -R '$(TSAN_TESTS)'

# Fuzzing with clang's libFuzzer: every library instrumented (coverage, ASan, UBSan), only the
# fuzz targets built, each run for FUZZ_SECONDS over its corpus, one after the other
# (scripts/fuzz.sh). The normal build replays the same corpora as unit tests (FuzzReplay.*).
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz-build:
	scripts/install-deps.sh --fuzz
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DMIGLET_FUZZ=ON -DMIGLET_BUILD_TESTS=OFF -DMIGLET_BUILD_BENCH=OFF
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_TARGETS)

SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null)
format:
	clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo "format-check: $(words $(SOURCES)) files clean"

BENCH_AGENTS ?= 1000,10000
BENCH_RUNS ?= 3
bench: bench-channel bench-agent bench-github bench-operator

bench-channel: build
	$(BUILD_DIR)/bench/channel_bench --agents=$(BENCH_AGENTS) --runs=$(BENCH_RUNS) \
	  --heartbeat-interval=10s --window=20s --command-rate=50

bench-agent: build
	bench/agent/agent_bench.py $(BUILD_DIR) --runs 10 --idle-seconds 60

bench-github: build
	$(BUILD_DIR)/bench/github_bench --runners-per-hour=1000 --hours=24 --lives=20

# The operator on a real control plane: 100 real agents scaled 0 -> 100 -> 0, the same with
# simulated agents, and API writes at 1,000 and 10,000 RunnerVMs (about 20 minutes).
bench-operator: build
	hack/cluster/build-tools.sh kube etcd
	$(BUILD_DIR)/bench/operator_bench --scale-agents=100 --scale-runs=3 --vms=$(BENCH_AGENTS) \
	  --window=60s

# What the one-node cluster runs besides the control plane (hack/cluster/build-tools.sh).
NODE_TOOLS = node crictl coredns

# A real cluster on this machine with miglet helm-installed (tests/e2e/e2e.py --demo).
demo: build images
	hack/cluster/build-tools.sh kube etcd helm $(NODE_TOOLS)
	tests/e2e/e2e.py --demo

demo-channel: build
	scripts/demo.sh

# Runner pods on the one-node cluster: kubectl scale 0 -> 20 -> 0, three times (prints figures).
bench-e2e: build images
	hack/cluster/build-tools.sh kube etcd helm $(NODE_TOOLS)
	tests/e2e/e2e.py --bench-scale 20

# The end-to-end tier alone: the teardown test and the scenarios (tests/e2e; docs/e2e.md).
e2e: build images
	hack/cluster/build-tools.sh kube etcd helm $(NODE_TOOLS)
	$(CTEST) -L e2e

# The chart's crds/ (copies of deploy/crds) and deploy/manifests/ (helm template of the chart);
# tests/deploy/manifests_drift_test.sh fails when they differ from what this makes.
manifests:
	hack/cluster/build-tools.sh helm
	hack/render-manifests.sh

# The two images. The Dockerfiles' FROM images are made here first (hack/images/base.sh:
# debootstrap + docker import), since no registry answers; elsewhere they are pulled.
VERSION := $(shell sed -n 's/^constexpr char kVersion\[\] = "\(.*\)";/\1/p' agent/cmd/main.cc)
IMAGE_PREFIX ?= ghcr.io/miglet
CONTROLLER_IMAGE = $(IMAGE_PREFIX)/mig-controller:$(VERSION)
AGENT_IMAGE = $(IMAGE_PREFIX)/miglet-agent:$(VERSION)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
images: deps
	hack/images/base.sh
	docker build -q -f Dockerfile.controller --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$(REVISION) -t $(CONTROLLER_IMAGE) .
	docker build -q -f Dockerfile.agent --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$(REVISION) -t $(AGENT_IMAGE) .
	@docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^$(IMAGE_PREFIX)/'

# The agent's bundle for VMs: $(BUILD_DIR)/miglet/ and miglet-VERSION-linux-amd64.tar.gz.
bundle: build
	hack/images/bundle.sh $(BUILD_DIR) $(BUILD_DIR)/miglet \
	  --tar $(BUILD_DIR)/miglet-$(VERSION)-linux-amd64.tar.gz

cluster-tools:
	hack/cluster/build-tools.sh

cluster-up:
	hack/cluster/up.sh --node

cluster-down:
	hack/cluster/down.sh

cluster-smoke:
	hack/cluster/smoke.sh

clean:
	rm -rf $(BUILD_DIR)/CMakeFiles $(BUILD_DIR)/build.ninja $(BUILD_DIR)/CMakeCache.txt \
	  $(BUILD_DIR)/common $(BUILD_DIR)/operator $(BUILD_DIR)/agent $(BUILD_DIR)/proto \
	  $(BUILD_DIR)/tests $(BUILD_DIR)/bench

# The kube client's tests against a real control plane (each test case starts its own with
# hack/cluster/up.sh). The tools build once (~11-20 min cold), then take seconds.
kube-tools:
	hack/cluster/build-tools.sh kube etcd

test-kube: build kube-tools
	$(CTEST) -L unit -R '^(Kubeconfig|InClusterConfig|Errors|WatchParser|RateLimiter|WorkQueue|LeaderElectionState|TimeFormat)Test\.'
	$(CTEST) -L integration -R '^(KubeClient|KubeCredentials|Informer|WatchExpiry|Lease)Test\.'

bench-kube: build kube-tools
	$(BUILD_DIR)/bench/kube_informer_bench --objects=$(KUBE_BENCH_OBJECTS)
KUBE_BENCH_OBJECTS ?= 10000
