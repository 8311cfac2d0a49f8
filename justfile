# Routine commands. `just` is optional: each recipe is a plain command you can copy.

set dotenv-load := false

target_dir := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/agentry/target")
export CARGO_TARGET_DIR := target_dir

# List recipes
default:
    @just --list

# Start the server (release build, UI included) on 127.0.0.1:8080
run *ARGS:
    scripts/setup
    cargo run --release -- {{ARGS}}

# Start a debug build quickly (no wasm-release LTO)
dev *ARGS:
    cargo run -- {{ARGS}}

# Every test on SQLite and PostgreSQL, plus fmt and clippy (what CI runs)
test *FILTER:
    scripts/test {{ if FILTER == "" { "" } else { "-- " + FILTER } }}

# Only the PostgreSQL half of the black-box suite
test-pg:
    cargo test -p agentry-tests -- postgres::

# Backend-only test cycle: skips building the web app
test-fast *FILTER:
    AGENTRY_SKIP_UI=1 cargo test -- {{FILTER}}

# Apply pending migrations (DATABASE_URL or the default SQLite)
migrate-up:
    cargo run -- migrate up

# Roll back the last migration
migrate-down:
    cargo run -- migrate down

# Show which migrations are applied
migrate-status:
    cargo run -- migrate status

# Drop everything and re-apply all migrations (destroys data)
migrate-fresh:
    cargo run -- migrate fresh

# Scaffold a new migration file in migration/src
migrate-new NAME:
    cargo run -p migration -- generate {{NAME}}

# Benchmarks: release server vs an instant LLM stub, SQLite and PostgreSQL, peers; writes
# docs/benchmarks.md (e.g. `just bench --skip peers`, `just bench --quick`)
bench *ARGS:
    scripts/bench {{ARGS}}

# Regenerate contracts/openapi.json from the code
openapi:
    AGENTRY_SKIP_UI=1 cargo run -- openapi --output contracts/openapi.json

# fmt check and clippy on host crates and the wasm UI
lint:
    cargo fmt --all --check
    cargo clippy --all-targets -- -D warnings
    cargo clippy -p ui --target wasm32-unknown-unknown -- -D warnings

# Format everything
fmt:
    cargo fmt --all

# The 60-minute soak → docs/soak.md (e.g. `just soak --minutes 5`)
soak *ARGS:
    scripts/soak {{ARGS}}

# Every fuzz target for 10 minutes, growing fuzz/corpus (e.g. `just fuzz --minutes 2 template`)
fuzz *ARGS:
    scripts/fuzz {{ARGS}}
