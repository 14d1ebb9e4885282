#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the real peers the tests talk to (through
# scripts/setup-test-deps.sh), checks formatting and lints, then runs all test targets.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The e2e workflow never runs here: its supply chain and shape are checked statically.
./scripts/workflow-lint.sh
# Benchmarks are type-checked by clippy above but not run here: performance lives in benches.
cargo test --lib --bins --tests --locked
# The matrix's Flux versions and the committed copies of the distribution's images files agree.
# Offline and date-independent: the network half (kind, Kubernetes, the distribution on GitHub,
# vendor support on today's date) runs weekly in .github/workflows/matrix-update.yaml.
cargo run --quiet --locked -- matrix update --check --offline --profile newest --distribution fixtures/distribution
