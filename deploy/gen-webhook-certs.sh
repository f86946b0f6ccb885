#!/usr/bin/env bash
# Creates the injector webhook's serving certificate and tells the API server to trust it:
#   1. a CA (ca.crt/ca.key) and a serving certificate (tls.crt/tls.key) for
#      pilotfish-webhook.pilotfish-system.svc, signed by that CA, with openssl;
#   2. the TLS secret pilotfish-webhook-tls in pilotfish-system (created or replaced);
#   3. caBundle of every webhook in the MutatingWebhookConfiguration pilotfish-sidecar-injector.
# The webhook reloads the mounted secret by itself, so re-running this rotates the certificate in place.
#
# usage: deploy/gen-webhook-certs.sh [--out-dir DIR] [--days N] [--no-kubectl]
#   --out-dir DIR   where the PEM files go (default: a new temporary directory, printed at the end)
#   --days N        validity of both certificates (default 365)
#   --no-kubectl    only write the files; do not touch the cluster
set -euo pipefail

namespace=pilotfish-system
service=pilotfish-webhook
secret=pilotfish-webhook-tls
webhook_config=pilotfish-sidecar-injector
out_dir=""
days=365
use_kubectl=1

while (($#)); do
  case "$1" in
    --out-dir) out_dir="${2:?--out-dir needs a directory}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --no-kubectl) use_kubectl=0; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gen-webhook-certs.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "gen-webhook-certs.sh: openssl is not installed" >&2; exit 1; }
if ((use_kubectl)); then
  command -v kubectl >/dev/null || { echo "gen-webhook-certs.sh: kubectl is not installed (or pass --no-kubectl)" >&2; exit 1; }
fi
[ -n "$out_dir" ] || out_dir="$(mktemp -d "${TMPDIR:-/tmp}/pilotfish-webhook-certs.XXXXXX")"
mkdir -p "$out_dir"
cd "$out_dir"

dns="${service}.${namespace}.svc"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
  -subj "/O=pilotfish/CN=pilotfish webhook CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=pilotfish/CN=${dns}" \
  -keyout tls.key -out tls.csr 2>/dev/null
cat > tls.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:${service},DNS:${service}.${namespace},DNS:${dns},DNS:${dns}.cluster.local
EXT
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
  -extfile tls.ext -out tls.crt 2>/dev/null
rm -f tls.csr tls.ext ca.srl
chmod 600 ca.key tls.key

if ((use_kubectl)); then
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  kubectl -n "$namespace" create secret tls "$secret" --cert=tls.crt --key=tls.key \
    --dry-run=client -o yaml | kubectl apply -f -
  ca_bundle="$(base64 <ca.crt | tr -d '\n')"
  if kubectl get mutatingwebhookconfiguration "$webhook_config" >/dev/null 2>&1; then
    count="$(kubectl get mutatingwebhookconfiguration "$webhook_config" -o jsonpath='{range .webhooks[*]}x{end}')"
    patch="["
    for ((i = 0; i < ${#count}; i++)); do
      ((i == 0)) || patch+=","
      patch+="{\"op\":\"replace\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}"
    done
    patch+="]"
    kubectl patch mutatingwebhookconfiguration "$webhook_config" --type=json -p "$patch"
  else
    echo "gen-webhook-certs.sh: $webhook_config does not exist yet: run 'kubectl apply -k deploy/' and run me again" >&2
  fi
fi
echo "$out_dir"
