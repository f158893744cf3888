#!/usr/bin/env bash
# The proxy benchmark in one command, from anywhere in the repository:
#
#   bash bench/run.sh                     # 5 s per measurement (smoke)
#   BENCH_DURATION=30s bash bench/run.sh  # longer runs for numbers to keep
#
# Installs what is missing (nginx, haproxy, caddy, wrk, h2load) with
# apt-get, then runs the harness (go run ./bench), which prints a Markdown
# table and writes bench/results/<date>.md. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A pkg=([nginx]=nginx [haproxy]=haproxy [caddy]=caddy [wrk]=wrk [h2load]=nghttp2-client)
missing=()
for cmd in nginx haproxy caddy wrk h2load; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg[$cmd]}")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
  else
    sudo=
  fi
  $sudo apt-get update -qq
  installable=()
  for p in "${missing[@]}"; do
    candidate=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $candidate || $candidate == "(none)" ]]; then
      # caddy is packaged from Debian 12 on; elsewhere its column is skipped.
      echo "bench: $p is not available from apt on this system; its column will be skipped" >&2
    else
      installable+=("$p")
    fi
  done
  if ((${#installable[@]})); then
    # Installing nginx, haproxy or caddy may start their system services on
    # ports 80/443/2019 (where systemd runs); the bench uses its own ports
    # and processes, so those only cost a little idle memory.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${installable[@]}"
  fi
fi

for cmd in wrk h2load; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "bench: $cmd is required and could not be installed" >&2; exit 1; }
done

exec go run ./bench
