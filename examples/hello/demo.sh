#!/bin/sh
# The README demo: a preview environment of this project, its URLs, then nothing left.
set -eu
cd "$(dirname "$0")"
cp /bin/busybox ./busybox      # the static busybox the Dockerfile copies (busybox-static package)
kubectl preevy up --id hello-demo
echo "now run: kubectl preevy connect --id hello-demo   (then open http://localhost:8080)"
echo "and when done: kubectl preevy down --id hello-demo"
