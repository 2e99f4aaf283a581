# The image `kubectl preevy install gc` runs in its CronJob: python3, kubectl and the kubectl-preevy zipapp.
#
#   make dist
#   docker build -t registry.example/kubectl-preevy-gc:0.1.0 .
#   docker push registry.example/kubectl-preevy-gc:0.1.0
#   kubectl preevy install gc -n previews --image registry.example/kubectl-preevy-gc:0.1.0
#
# The CronJob runs it as user 65534 with a read-only root filesystem and HOME=/tmp (an emptyDir).
FROM python:3.12-slim

ARG KUBECTL_VERSION=v1.32.4
ARG TARGETARCH=amd64
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /usr/local/bin/kubectl
COPY dist/kubectl-preevy /usr/local/bin/kubectl-preevy
RUN chmod 0755 /usr/local/bin/kubectl /usr/local/bin/kubectl-preevy

ENV HOME=/tmp
USER 65534:65534
ENTRYPOINT ["kubectl-preevy"]
CMD ["gc"]
