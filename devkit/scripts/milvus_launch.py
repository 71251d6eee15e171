"""Start one Milvus 2.3.5 standalone server (PyPI `milvus`) on ports chosen by the caller.

`milvus-server` (the package's CLI) treats every --*-port flag as a *starting point* and
silently moves to the next free port, and it always picks the metrics/healthz port itself
(9091 upwards) and the embedded etcd always listens on 2379/2380. This launcher uses the
package's own Python API instead so that every port is exact and a taken port is an error
(exit status 3) rather than a silent move:

    python milvus_launch.py DATA_DIR AUTH(0|1) PORT_JSON [BIN_DIR]

PORT_JSON maps the template's *_port keys plus "metrics", "etcd_client", "etcd_peer".
BIN_DIR: already unpacked server binaries (see provision-milvus.sh); DATA_DIR/bin becomes a
link to it, which saves unpacking 250 MB for every server.
"""
import json
import os
import sys

import milvus

data_dir, auth, ports = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[3])

os.makedirs(data_dir, exist_ok=True)
if len(sys.argv) > 4 and sys.argv[4] and not os.path.lexists(os.path.join(data_dir, "bin")):
    os.symlink(sys.argv[4], os.path.join(data_dir, "bin"))
# Embedded etcd: without a config file it listens on localhost:2379/2380 whatever
# etcd.endpoints says. Milvus reads ETCD_CONFIG_PATH from the environment.
etcd_cfg = os.path.join(data_dir, "embed-etcd.yaml")
client = f"http://127.0.0.1:{ports['etcd_client']}"
peer = f"http://127.0.0.1:{ports['etcd_peer']}"
with open(etcd_cfg, "w", encoding="utf-8") as f:
    f.write(
        f"listen-client-urls: {client}\n"
        f"advertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\n"
        f"initial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: default={peer}\n"
    )
os.environ["ETCD_CONFIG_PATH"] = etcd_cfg

template_ports = {k: v for k, v in ports.items() if k.endswith("_port")}
template_ports["etcd_port"] = ports["etcd_client"]
# Ports passed as config kwargs are bound exactly ("set X, but bind failed" otherwise).
config = milvus.MilvusServerConfig(data_dir=data_dir, **template_ports)
if auth:
    config.set("authorization_enabled", True)
server = milvus.MilvusServer(config, wait_for_started=False)
metrics = ports["metrics"]
probe = server.config.try_bind_port(metrics)
if probe is None:
    print(f"metrics port {metrics} is taken", file=sys.stderr)
    sys.exit(3)
probe.close()
server.webservice_port = metrics  # resolve_port() starts from here; it is free (just checked)
try:
    server.start()
except RuntimeError as e:  # a port was taken
    print(f"milvus launch failed: {e}", file=sys.stderr)
    sys.exit(3)
print(f"milvus pid {server.server_proc.pid} ports {json.dumps(ports)}", flush=True)
rc = server.server_proc.wait()
sys.exit(rc)
