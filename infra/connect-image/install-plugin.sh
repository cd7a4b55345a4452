#!/usr/bin/env bash
# Installs the Confluent AWS Lambda sink plugin VERSION with the Confluent Hub client
# (TLS verified) and checks the SHA-256 of its jar. Fails the image build on any mismatch.
set -euo pipefail
version="${1:?plugin version}"
sha256="${2:?the SHA-256 of the plugin jar is required (--build-arg LAMBDA_SINK_SHA256=...)}"
work="$(mktemp -d)"
confluent-hub install --no-prompt --component-dir "$work" --worker-configs /dev/null \
  "confluentinc/kafka-connect-aws-lambda:${version}"
# The client unpacks the archive; check the plugin's own jar, whose checksum the release lists.
jar="$(find "$work" -name "kafka-connect-aws-lambda-${version}.jar" | head -1)"
[ -n "$jar" ] || { echo "plugin jar kafka-connect-aws-lambda-${version}.jar not found" >&2; exit 1; }
echo "${sha256}  ${jar}" | sha256sum -c -
mkdir -p /usr/share/confluent-hub-components
mv "$work"/* /usr/share/confluent-hub-components/
rm -rf "$work"
