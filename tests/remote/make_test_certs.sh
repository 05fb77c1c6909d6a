#!/bin/sh
# make_test_certs.sh DIR - a throw-away PKI for the TLS tests, made with
# openssl at test time (nothing secret is kept in the repository):
#   ca.pem            the test CA (clients trust it via MODALTENSOR_TLS_CA)
#   server.pem/.key   a server certificate from that CA for localhost and
#                     127.0.0.1
#   other.pem/.key    a certificate from that CA for another name only
#                     (example.invalid): the name check must refuse it
#   stranger-ca.pem   an unrelated CA, which did not sign the server's
# Keys are unencrypted EC P-256, certificates valid for 2 days.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# openssl req -x509 with the CA extensions, then one signed leaf per name.
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj "/CN=modaltensor test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -x509 $ec -keyout stranger-ca.key -out stranger-ca.pem -days 2 \
  -subj "/CN=another test CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null

leaf() { # leaf NAME CN SAN
  openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" \
    > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf other example.invalid "DNS:example.invalid"
