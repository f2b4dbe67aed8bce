#!/usr/bin/env bash
# What the test suite needs from the operating system, beyond Python packages:
#   chromium (+ CJK fonts) for the browser tests, PostgreSQL for the production-path tests,
#   Java 17 and Maven to fetch and run the Kafka broker, iproute2 (ip netns) for the
#   network-partition test.
# As root on Debian it installs what is missing; otherwise it says what to install.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# The font files, not fc-list: its cache may lag a fresh install.
compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK*" >/dev/null || missing+=(fonts-noto-cjk)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v ip >/dev/null || missing+=(iproute2)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing from Debian: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them (Debian: sudo apt-get install ${missing[*]}) and run make test again" >&2
exit 1
