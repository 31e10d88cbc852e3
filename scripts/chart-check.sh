#!/usr/bin/env bash
# The Helm chart's checks (part of `make test`, before the infrastructure starts; no cluster, no
# network): for every scenario in helm/ci/, `helm lint --strict`, `helm template`, and strict
# validation of every rendered object against the Kubernetes schemas of the oldest supported and
# the newest release (kubernetes-validate's bundled schemas). Then the Grafana dashboard ConfigMap
# must carry the dashboard, and values.schema.json must refuse a bad value. Tools come from
# scripts/tools.sh (var/tools). Rendered output: var/chart/.
set -euo pipefail
cd "$(dirname "$0")/.."

helm=var/tools/bin/helm
validate=var/tools/venv/bin/kubernetes-validate
[ -x "$helm" ] || { echo "chart-check: helm is missing ($helm): run scripts/tools.sh" >&2; exit 1; }
[ -x "$validate" ] || { echo "chart-check: kubernetes-validate is missing ($validate): run scripts/tools.sh" >&2; exit 1; }

chart=helm/chat
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: gRPC probes are GA from 1.27)
# and the newest the schemas know.
kube_versions=(1.27.0 1.37.0)
render_version=${kube_versions[-1]}
out=var/chart
rm -rf "$out" && mkdir -p "$out"

scenarios=(helm/ci/*.yaml)
[ ${#scenarios[@]} -gt 0 ] && [ -e "${scenarios[0]}" ] || { echo "chart-check: no scenarios in helm/ci/" >&2; exit 1; }
for values in "${scenarios[@]}"; do
  name=$(basename "$values" .yaml)
  "$helm" lint --strict --quiet --kube-version "$render_version" "$chart" -f "$values" > "$out/$name.lint.txt" 2>&1 \
    || { cat "$out/$name.lint.txt" >&2; echo "chart-check: helm lint --strict failed for $values" >&2; exit 1; }
  "$helm" template chat "$chart" --namespace chat --kube-version "$render_version" -f "$values" > "$out/$name.yaml"
  objects=$(grep -c '^kind: ' "$out/$name.yaml")
  for v in "${kube_versions[@]}"; do
    # Objects of kinds without a bundled schema only warn; the one allowed is the Prometheus
    # Operator's ServiceMonitor (a CRD). Anything else unknown fails.
    report=$("$validate" --strict --quiet -k "$v" "$out/$name.yaml" 2>&1) || { echo "$report" >&2; echo "chart-check: $values does not validate against Kubernetes $v" >&2; exit 1; }
    unexpected=$(grep -v "Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" <<<"$report" | grep -v '^$' || true)
    [ -z "$unexpected" ] || { echo "$unexpected" >&2; echo "chart-check: unexpected validation warnings for $values (Kubernetes $v)" >&2; exit 1; }
  done
  echo "chart-check: $name: lint ok, $objects objects rendered, valid against Kubernetes ${kube_versions[*]}"
done

# The Grafana dashboard: not rendered by default; enabled, one ConfigMap labelled for the Grafana
# sidecar that carries the chart's one copy of the JSON, unchanged.
if grep -q 'grafana_dashboard' "$out/minimal.yaml"; then echo "chart-check: the dashboard ConfigMap is rendered though not enabled" >&2; exit 1; fi
"$helm" template chat "$chart" --kube-version "$render_version" -f helm/ci/minimal.yaml --set metrics.grafanaDashboard.enabled=true \
  --show-only templates/grafana-dashboard.yaml > "$out/dashboard.yaml"
var/tools/venv/bin/python - "$out/dashboard.yaml" "$chart/dashboards/chat-mesh.json" <<'PY' || { echo "chart-check: the dashboard ConfigMap is wrong" >&2; exit 1; }
import json, sys, yaml
cm = yaml.safe_load(open(sys.argv[1]))
assert cm["kind"] == "ConfigMap", cm["kind"]
assert cm["metadata"]["labels"].get("grafana_dashboard") == "1", "labelled grafana_dashboard: \"1\" for the sidecar"
assert json.loads(cm["data"]["chat-mesh.json"]) == json.load(open(sys.argv[2])), "the ConfigMap carries dashboards/chat-mesh.json unchanged"
PY
echo "chart-check: the Grafana dashboard ConfigMap renders when enabled, with the sidecar label and the dashboard unchanged"

# The values schema and the template guards refuse what they should.
expect_refused() {
  local why=$1; shift
  if "$helm" template chat "$chart" --kube-version "$render_version" -f helm/ci/minimal.yaml "$@" > /dev/null 2>"$out/refused.txt"; then
    echo "chart-check: not refused: $why ($*)" >&2; exit 1
  fi
}
expect_refused "an unknown value" --set services.edge.replica=3
expect_refused "an unknown service setting" --set services.group.settings.MAX_GROUP_MEMBRS=10
expect_refused "a malformed broker address" --set 'kafka.brokers={kafka}'
expect_refused "no way to authenticate clients" --set auth.hs256Secret.name=
expect_refused "an unknown dashboard value" --set metrics.grafanaDashboard.folder=Chat
echo "chart-check: values.schema.json and template guards refuse bad values"
