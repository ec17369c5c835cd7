# Stand-in for prom/alertmanager:v${LAB_ALERTMANAGER_VERSION}, from the natively built
# static binaries (scripts/native/build.sh alertmanager), by scripts/docker/standins.sh.
# Contract of the upstream image (github.com/prometheus/alertmanager, Dockerfile):
#   FROM quay.io/prometheus/busybox  -> busybox (sh, wget: compose's healthcheck uses wget)
#   /bin/alertmanager, /bin/amtool, /etc/alertmanager/alertmanager.yml (example config)
#   /alertmanager owned by nobody; USER nobody; VOLUME /alertmanager; WORKDIR /alertmanager
#   ENTRYPOINT ["/bin/alertmanager"]
#   CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
FROM scratch
COPY rootfs/ /
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY alertmanager amtool /bin/
COPY alertmanager.yml /etc/alertmanager/alertmanager.yml
RUN mkdir -p /alertmanager && chown -R nobody:nobody /etc/alertmanager /alertmanager && chmod -R g+w /alertmanager
USER nobody
EXPOSE 9093
VOLUME ["/alertmanager"]
WORKDIR /alertmanager
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
