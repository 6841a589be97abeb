#!/usr/bin/env bash
# A three-node Ray cluster on this one machine: a head and two workers, each its own `ray start` process with
# its own CPUs, a logical GPU, custom resources and temp dir. It runs the bulk job (`colorize archive` with
# RAY_ADDRESS) and the API (`serve deploy deploy/serve.yaml` through the dashboard) against that cluster
# exactly as they run on a real one, asks the API for a colorization with curl, shows `ray status`, and tears
# everything down again.
#
#   deploy/multinode.sh                       # from anywhere; ~1-2 minutes on 2 cores
#   KEEP=1 deploy/multinode.sh                # keep the work folder (logs, archive, outputs, reports)
#
# The workers advertise `--num-gpus 1` without a GPU: the scheduler places the GPU actors exactly as on a GPU
# cluster (one per worker node), and the model inside them runs on the CPU (torch finds no CUDA device).
# Ray token authentication is on, and so is the API key. Only the processes this script started are stopped
# (by PID, then anything left under its own temp dir): other Ray instances on the machine are untouched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(cd "${COLORIZE_VENV:-$ROOT/.venv}/bin" && pwd)"
export PATH="$BIN:$PATH"
unset RAY_ADDRESS RAY_AUTH_TOKEN_PATH  # this script's cluster only, whatever the caller had

# Short paths: Ray's Unix sockets live under the temp dir and must stay under ~100 characters.
WORK="$(mktemp -d /tmp/ltbc.XXXXXX)"
PIDS=()
say() { echo "== [$(printf '%3d' "$SECONDS")s] $*"; }

teardown() {
  local rc=$?
  set +e
  say "teardown"
  if [ -n "${DASH_PORT:-}" ]; then
    timeout 30 serve shutdown -a "http://127.0.0.1:$DASH_PORT" -y >/dev/null 2>&1
  fi
  # SIGTERM to every node, workers first: each `ray start --block` stops its own node's processes.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null; done
  for _ in $(seq 1 30); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  # Whatever is left of these nodes (workers, agents) still names this script's temp dir on its command line.
  leftovers="$(pgrep -f -- "$WORK" || true)"
  if [ -n "$leftovers" ]; then
    kill -TERM $leftovers 2>/dev/null
    sleep 2
    kill -KILL $(pgrep -f -- "$WORK" || true) 2>/dev/null
  fi
  echo "stopped ${#PIDS[@]} nodes; processes left under $WORK: $(pgrep -fc -- "$WORK" || true)"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

free_ports() { # N free TCP ports on loopback, distinct from each other
  python - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r GCS_PORT DASH_PORT CLIENT_PORT HTTP_PORT AGENT_H AGENT_A AGENT_B <<<"$(free_ports 7)"

# Ray token authentication, as every cluster should run (a fresh token per run, in this process tree only);
# and the API's bearer key, read by the ingress replicas from their environment.
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN="$(python -c 'import secrets; print(secrets.token_hex(32))')"
COLORIZE_API_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(24))')"
export RAY_AUTH_TOKEN COLORIZE_API_KEY
export RAY_USAGE_STATS_ENABLED=0 OMP_NUM_THREADS=1
# A node stopping on SIGTERM first drains (lets Serve proxies finish requests); nothing is in flight here.
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=2
common=(--block --node-ip-address 127.0.0.1 --disable-usage-stats)

say "ray start: head (1 CPU, no GPU) and two workers (2 CPUs + 1 GPU, 1 CPU + 1 GPU)"
ray start --head "${common[@]}" --port "$GCS_PORT" --num-cpus 1 --num-gpus 0 \
  --resources '{"sim_head": 1}' --temp-dir "$WORK/h" \
  --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$DASH_PORT" \
  --ray-client-server-port "$CLIENT_PORT" --dashboard-agent-listen-port "$AGENT_H" \
  >"$WORK/head.log" 2>&1 &
PIDS+=($!)
export RAY_ADDRESS="127.0.0.1:$GCS_PORT"
for _ in $(seq 1 60); do
  ray status --address "$RAY_ADDRESS" >/dev/null 2>&1 && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/head.log"; exit 1; }
  sleep 1
done
ray start --address "$RAY_ADDRESS" "${common[@]}" --num-cpus 2 --num-gpus 1 \
  --resources '{"sim_worker_a": 1}' --temp-dir "$WORK/a" --dashboard-agent-listen-port "$AGENT_A" \
  >"$WORK/worker-a.log" 2>&1 &
PIDS+=($!)
ray start --address "$RAY_ADDRESS" "${common[@]}" --num-cpus 1 --num-gpus 1 \
  --resources '{"sim_worker_b": 1}' --temp-dir "$WORK/b" --dashboard-agent-listen-port "$AGENT_B" \
  >"$WORK/worker-b.log" 2>&1 &
PIDS+=($!)

python - <<'EOF'
import time, ray
ray.init(logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 90
while sum(n["Alive"] for n in ray.nodes()) < 3:
    assert time.monotonic() < deadline, "the worker nodes did not join"
    time.sleep(0.5)
for n in sorted(ray.nodes(), key=lambda n: -n["Resources"].get("CPU", 0)):
    custom = [k for k in n["Resources"] if k.startswith("sim_")]
    print(f"  node {n['NodeID'][:8]}  {custom[0]:13s} CPU={n['Resources'].get('CPU', 0):.0f} "
          f"GPU={n['Resources'].get('GPU', 0):.0f}  temp dir {n['ObjectStoreSocketName'].split('/session_')[0]}")
EOF

say "a synthetic archive: 24 images in nested folders, plus one corrupt object"
python - "$WORK/archive" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root = Path(sys.argv[1])
rng = np.random.default_rng(0)
for i in range(24):
    w, h = (96 + 16 * (i % 4), 64 + 16 * (i % 3))
    y, x = np.mgrid[0:h, 0:w]
    grey = (128 + 90 * np.sin(x / 9 + i) * np.cos(y / 7) + rng.normal(0, 6, (h, w))).clip(0, 255).astype("uint8")
    path = root / f"box{i % 3}" / f"roll{i % 2}" / f"scan{i:02d}.{'png' if i % 4 == 0 else 'jpg'}"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey, "L").save(path)
(root / "box0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
print(f"  {sum(1 for p in root.rglob('*') if p.is_file())} objects under {root}")
EOF

say "colorize archive (RAY_ADDRESS=$RAY_ADDRESS): 2 GPU actors, one per worker node"
set +e
colorize archive "$WORK/archive" "$WORK/colorized" --gpus-per-worker 1 --cpus-per-worker 0.5 \
  --workers 2,2 --batch-size 4 --io-batch-size 4 --no-progress
archive_rc=$?
set -e
outputs=$(find "$WORK/colorized" -type f \( -name '*.jpg' -o -name '*.png' \) -not -path '*/_reports/*' | wc -l)
echo "  exit status $archive_rc (1 = some objects failed); $outputs colorized files written"
[ "$outputs" -eq 24 ] || { echo "expected 24 outputs"; exit 1; }
[ "$archive_rc" = 1 ] || { echo "expected exit status 1 (one corrupt object)"; exit 1; }

say "serve deploy deploy/serve.yaml (HTTP port $HTTP_PORT) through the dashboard's REST API"
python - "$WORK/serve.yaml" "$HTTP_PORT" <<'EOF'
import sys, yaml
config = yaml.safe_load(open("deploy/serve.yaml"))
config["http_options"]["port"] = int(sys.argv[2])  # only the port differs, so it cannot clash
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
EOF
serve deploy "$WORK/serve.yaml" -a "http://127.0.0.1:$DASH_PORT"
for _ in $(seq 1 120); do
  status="$(serve status -a "http://127.0.0.1:$DASH_PORT" 2>/dev/null || true)"
  grep -q "status: RUNNING" <<<"$status" && break
  grep -q "DEPLOY_FAILED" <<<"$status" && { echo "$status"; exit 1; }
  sleep 1
done
grep -q "status: RUNNING" <<<"$status" || { echo "$status"; echo "the application is not running"; exit 1; }
serve status -a "http://127.0.0.1:$DASH_PORT" | grep -vE '^ *(message|last_deployed_time_s):' | sed 's/^/  /'

say "curl"
API="http://127.0.0.1:$HTTP_PORT"
IMG="$WORK/archive/box1/roll1/scan01.jpg"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$IMG" -H 'Content-Type: image/jpeg' "$API/v1/colorize")
echo "  POST /v1/colorize without the API key -> $code"
[ "$code" = 401 ] || { echo "expected 401 without the key"; exit 1; }
curl -sS -D "$WORK/headers.txt" -o "$WORK/colorized.png" --data-binary @"$IMG" \
  -H 'Content-Type: image/jpeg' -H "Authorization: Bearer $COLORIZE_API_KEY" "$API/v1/colorize?format=png"
grep -iE '^(HTTP/|content-type|x-model:|x-batch-size)' "$WORK/headers.txt" | tr -d '\r' | sed 's/^/  /'
python - "$IMG" "$WORK/colorized.png" <<'EOF'
import sys
from PIL import Image
src, out = Image.open(sys.argv[1]), Image.open(sys.argv[2])
assert out.format == "PNG" and out.mode == "RGB" and out.size == src.size, (out.format, out.mode, out.size)
print(f"  answer: {out.format} {out.mode} {out.size[0]}x{out.size[1]} (input {src.size[0]}x{src.size[1]})")
EOF
echo "  GET /readyz -> $(curl -sS "$API/readyz")"
echo "  GET /metrics -> $(curl -sS "$API/metrics" | grep -c '^colorize_') colorize_* samples, e.g."
curl -sS "$API/metrics" | grep '^colorize_http_requests_total' | sed 's/^/    /'

say "where everything ran (Ray state API)"
python - "$DASH_PORT" <<'EOF'
import sys
from collections import defaultdict
import ray
from ray.util.state import list_actors
ray.init(logging_level="ERROR", log_to_driver=False)
names = {n["NodeID"]: next(k for k in n["Resources"] if k.startswith("sim_")) for n in ray.nodes()}
actors = list_actors(address=f"http://127.0.0.1:{sys.argv[1]}", detail=True, limit=1000,
                     raise_on_missing_output=False)
placed = defaultdict(list)
for a in actors:
    for label in ("ColorizeWorker", "ColorizeIngress", "ColorizerModel", "ServeController", "ProxyActor"):
        if label in a.class_name:
            placed[label].append(f"{names.get(a.node_id, '?')}({a.state.lower()})")
for label, where in placed.items():
    print(f"  {label:16s} {', '.join(sorted(where))}")
gpu_nodes = {w.split("(")[0] for w in placed["ColorizeWorker"]}
assert gpu_nodes == {"sim_worker_a", "sim_worker_b"}, f"one GPU actor per GPU node expected: {gpu_nodes}"
EOF

say "ray status"
ray status --address "$RAY_ADDRESS" | sed 's/^/  /'
say "multi-node run OK"
