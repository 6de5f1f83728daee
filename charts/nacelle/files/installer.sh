#!/bin/sh
# nacelle's node installer, run by the chart's DaemonSet in a privileged pod in the host's PID namespace (kata-deploy's
# way). `install` copies the binaries, the unit and the configuration onto the host through hostPath mounts, enables
# and (re)starts nacelle.service with the host's own systemctl (in PID 1's mount namespace), waits for the CRI socket,
# labels the node and waits. `stop` (the container's preStop) uninstalls only when the DaemonSet itself is gone, that
# is on `helm uninstall`: a rolling update or a restarted pod leaves nacelle running. Pods nacelle runs are never
# stopped by either (the unit's KillMode=process).
set -eu

payload=/opt/nacelle
binaries="nacelle nacelle-monitor nacelle-spawn nacelle-pause libe_sqlite3.so"
unit=nacelle.service
ready=/tmp/nacelle-ready
: "${NODE_NAME:?}" "${POD_NAMESPACE:?}" "${DAEMONSET_NAME:?}" "${NODE_LABEL_KEY:?}" "${NODE_LABEL_VALUE:?}"
: "${HOST_BIN_DIR:?}" "${HOST_CONFIG_DIR:?}" "${HOST_SOCKET:?}" "${UNINSTALL_ON_DELETE:=true}"

log() { echo "nacelle-installer: $*" >&2; }
host() { nsenter --target 1 --mount -- "$@"; }

api() { # METHOD PATH [BODY]: the API server, as this pod's service account; prints the body, fails on HTTP errors
	sa=/var/run/secrets/kubernetes.io/serviceaccount
	server=$KUBERNETES_SERVICE_HOST
	case "$server" in *:*) server="[$server]" ;; esac
	set -- "$1" "https://$server:$KUBERNETES_SERVICE_PORT$2" "${3:-}"
	if [ -n "$3" ]; then
		curl -sS --fail-with-body --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" \
			-X "$1" -H "Content-Type: application/merge-patch+json" --data "$3" "$2"
	else
		curl -sS --fail-with-body --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" -X "$1" "$2"
	fi
}

label_node() { # VALUE as a JSON string, or null to remove the label
	api PATCH "/api/v1/nodes/$NODE_NAME" "{\"metadata\":{\"labels\":{\"$NODE_LABEL_KEY\":$1}}}" >/dev/null
}

# Copies FILE to the host path DEST by rename, so a running program keeps its old file; says whether it changed.
put() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		return 1
	fi
	cp "$1" "$(dirname "$2")/.$(basename "$2").new"
	chmod "$3" "$(dirname "$2")/.$(basename "$2").new"
	mv -f "$(dirname "$2")/.$(basename "$2").new" "$2"
}

do_install() {
	if host test -e /usr/lib/nacelle/nacelle; then
		log "nacelle is installed from the Debian package on $NODE_NAME; remove it there or unselect this node"
		exit 1
	fi
	for f in $binaries nacelle.service; do
		[ -f "$payload/$f" ] || { log "the image lacks $payload/$f"; exit 1; }
	done
	# A configuration nacelle would refuse never reaches the host.
	"$payload/nacelle" config check /installer/config.toml --config-dir /host/config/config.d

	changed=0
	for f in $binaries; do
		mode=0755
		[ "$f" = libe_sqlite3.so ] && mode=0644
		if put "$payload/$f" "/host/bin/$f" "$mode"; then changed=1; fi
	done
	if put /installer/config.toml /host/config/config.toml 0644; then changed=1; fi
	sed "s|^ExecStart=/usr/lib/nacelle/|ExecStart=$HOST_BIN_DIR/|" "$payload/nacelle.service" > /tmp/nacelle.service
	if put /tmp/nacelle.service "/host/units/$unit" 0644; then changed=1; fi

	host systemctl daemon-reload
	host systemctl enable "$unit"
	if [ "$changed" = 1 ]; then
		log "installed into $HOST_BIN_DIR; restarting $unit (its pods keep running)"
		host systemctl restart "$unit"
	else
		host systemctl start "$unit"
	fi

	tries=0
	until [ -S "/host/run/$(basename "$HOST_SOCKET")" ] && host systemctl is-active --quiet "$unit"; do
		tries=$((tries + 1))
		if [ "$tries" -gt 120 ]; then
			log "$unit did not come up; on the node: journalctl -u $unit"
			exit 1
		fi
		sleep 1
	done
	label_node "\"$NODE_LABEL_VALUE\""
	touch "$ready"
	log "nacelle is serving $HOST_SOCKET on $NODE_NAME (labelled $NODE_LABEL_KEY=$NODE_LABEL_VALUE)"
}

do_uninstall() {
	log "uninstalling nacelle from $NODE_NAME (its pods keep running; its state stays in /var/lib/nacelle)"
	rm -f "$ready"
	host systemctl disable --now "$unit" || true
	rm -f "/host/units/$unit"
	host systemctl daemon-reload || true
	for f in $binaries; do rm -f "/host/bin/$f"; done
	rm -f /host/config/config.toml
	host rmdir "$HOST_BIN_DIR" 2>/dev/null || true
	host rmdir "$HOST_CONFIG_DIR" 2>/dev/null || true # kept while the host has its own config.d
	label_node null || log "could not remove the label $NODE_LABEL_KEY from $NODE_NAME"
}

case "${1:-}" in
	install)
		do_install
		trap 'exit 0' TERM INT
		while :; do sleep 3600 & wait $!; done
		;;
	stop)
		[ "$UNINSTALL_ON_DELETE" = true ] || exit 0
		# Gone, or being deleted: `helm uninstall`. Anything else: an update or a restart of this pod.
		if daemonset=$(api GET "/apis/apps/v1/namespaces/$POD_NAMESPACE/daemonsets/$DAEMONSET_NAME" 2>&1); then
			case "$daemonset" in *'"deletionTimestamp"'*) do_uninstall ;; esac
		else
			case "$daemonset" in *'"code": 404'* | *'"code":404'*) do_uninstall ;; *) log "cannot read the DaemonSet: $daemonset" ;; esac
		fi
		;;
	*)
		echo "usage: installer.sh install|stop" >&2
		exit 2
		;;
esac
