#!/bin/sh
# Checks the manifests' privgate configuration before `kubectl apply`:
# writes the ConfigMaps and the Secret out as the pod sees them
# (/etc/privgate/{config,contracts,secrets}), runs `privgate check` and
# `privgate test` on them, and verifies that the checksum annotation is up
# to date. Needs yq (the jq wrapper) and privgate.
#   usage: check-config.sh [PRIVGATE]   (default: privgate from $PATH)
set -eu
privgate=${1:-privgate}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/config" "$dir/contracts" "$dir/secrets"
cm="$here/configmap.yaml"
yq -r 'select(.metadata.name == "privgate-config") | .data["privgate.yaml"]' "$cm" \
    > "$dir/config/privgate.yaml"
for k in $(yq -r 'select(.metadata.name == "privgate-contracts") | .data | keys[]' "$cm"); do
    yq -r --arg k "$k" 'select(.metadata.name == "privgate-contracts") | .data[$k]' "$cm" \
        > "$dir/contracts/$k"
done
for k in $(yq -r '.stringData | keys[]' "$here/secret.yaml"); do
    yq -j --arg k "$k" '.stringData[$k]' "$here/secret.yaml" > "$dir/secrets/$k"
done
"$privgate" check -c "$dir/config/privgate.yaml"
"$privgate" test -c "$dir/config/privgate.yaml" | tail -n 1
sum=$(cat "$here/configmap.yaml" "$here/secret.yaml" | sha256sum | cut -d' ' -f1)
if ! grep -q "checksum/config: \"sha256:$sum\"" "$here/deployment.yaml"; then
    echo "deployment.yaml: checksum/config is stale: run update-checksum.sh" >&2
    exit 1
fi
echo "checksum/config up to date"
