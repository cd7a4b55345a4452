#!/usr/bin/env bash
# install-plugin.sh URL SHA256 DIR: downloads the Confluent AWS Lambda sink plugin archive (https,
# TLS verified; or file:// for an archive the build mounts, as scripts/image does with the
# stand-in), checks its SHA-256 and unpacks it into DIR. Fails the image build on any mismatch.
set -euo pipefail
url="${1:?plugin archive URL}"
sha256="${2:?the SHA-256 of the plugin archive is required (--build-arg LAMBDA_SINK_SHA256=...)}"
dir="${3:?plugin directory}"
work="$(mktemp -d)"
curl -fsSL --proto '=https,file' --retry 3 -o "$work/plugin.zip" "$url"
echo "${sha256}  $work/plugin.zip" | sha256sum -c -
mkdir -p "$dir"
# jar (the build stage's JDK) unpacks zips; the archive holds one top directory with lib/.
(cd "$work" && jar xf plugin.zip && rm plugin.zip)
find "$work" -name '*.jar' -path '*/lib/*' -exec cp {} "$dir/" \;
[ -n "$(ls "$dir")" ] || { echo "no jars under lib/ in $url" >&2; exit 1; }
rm -rf "$work"
