#!/bin/sh
# Rewrites the checksum/config annotation of deployment.yaml with the
# SHA-256 of configmap.yaml and secret.yaml, so that `kubectl apply -k .`
# after a config change rolls the replicas. Run it from anywhere.
set -eu
cd "$(dirname "$0")"
sum=$(cat configmap.yaml secret.yaml | sha256sum | cut -d' ' -f1)
sed -i "s|^\( *checksum/config: \).*|\1\"sha256:$sum\"|" deployment.yaml
echo "checksum/config: sha256:$sum"
