#!/usr/bin/env bash
# tls_certs.sh DIR: a throwaway PKI for the TLS tests, made with openssl.
#   DIR/ca.pem             the test CA (self-signed)
#   DIR/server.pem, .key   signed by it, for IP 127.0.0.1 and DNS localhost
#   DIR/other-ca.pem       a second CA that signed nothing the tests serve
#   DIR/wrongname.pem,.key signed by the test CA, for DNS wrong.invalid only
# Keys are EC P-256; everything is valid for 2 days.
set -euo pipefail
d=${1:?usage: tls_certs.sh DIR}
mkdir -p "$d"
cd "$d"
ossl() { openssl "$@" 2>/dev/null; }

mkca() {	# name cn
	ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkleaf() {	# name cn san
	ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
	    "$3" > "$1.ext"
	ossl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
	    -out "$1.pem" -days 2 -extfile "$1.ext"
	rm -f "$1.csr" "$1.ext"
}
mkca ca "s3-batch test CA"
mkca other-ca "s3-batch other CA"
mkleaf server 127.0.0.1 "IP:127.0.0.1,DNS:localhost"
mkleaf wrongname wrong.invalid "DNS:wrong.invalid"
chmod 600 ./*.key
openssl verify -CAfile ca.pem server.pem >/dev/null
