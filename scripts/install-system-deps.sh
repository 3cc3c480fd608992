#!/usr/bin/env bash
# Install the Debian packages the tests and the demo run for real: a Pushgateway, Prometheus
# (with promtool), PostgreSQL's server binaries, a Java runtime for the Spark Thrift Server
# (pyspark itself comes from PyPI) and Chromium (the browser test). Does nothing when they are all present.
set -euo pipefail

missing=()
command -v prometheus-pushgateway >/dev/null 2>&1 || command -v pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The fault-injection tests make a private CA and a gateway certificate with openssl.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
# Spark 4 runs on Java 17 or 21.
java -version 2>&1 | grep -Eq 'version "(1[7-9]|2[0-9])' || missing+=(openjdk-17-jre-headless)
# The browser test and `make screenshot` open the HTML reports in headless Chromium, with a font to draw text.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing missing system packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: need root (or sudo) to apt-get install ${missing[*]}; install them and rerun" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install ${missing[*]} with your package manager and rerun" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The packages' own services are not wanted: the tests start their own on free ports.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for service in prometheus prometheus-pushgateway; do
  if command -v service >/dev/null 2>&1; then $sudo service "$service" stop >/dev/null 2>&1 || true; fi
done
