"""Validates the deployment files against their public schemas, and against the gateway.

    python3 tests/deploy/validate.py compose KNOWN.json
    python3 tests/deploy/validate.py k8s KNOWN.json

KNOWN.json (written by tests/deploy.rs from the gateway's own clap definitions) holds
{"gateway": [env vars], "demo": [env vars], "defaultPort": 3001, "shutdownTimeoutSecs": 10}.
Needs jsonschema and PyYAML (compose) and kubernetes-validate (k8s); scripts/test.sh installs
them in target/pyvenv. Prints one line per problem and exits 1 when there is any.
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []
# The Kubernetes version the manifests are checked against.
K8S_VERSION = "1.33.0"


def problem(msg):
    problems.append(msg)
    print("problem: " + msg)


def load_yaml_all(path):
    import yaml
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def compose(known):
    import jsonschema
    with open(os.path.join(ROOT, "deploy/schemas/compose-spec.json")) as f:
        schema = json.load(f)
    (doc,) = load_yaml_all(os.path.join(ROOT, "docker-compose.multi.yml"))
    validator = jsonschema.Draft7Validator(schema)
    for e in validator.iter_errors(doc):
        problem("docker-compose.multi.yml: %s at %s" % (e.message, "/".join(map(str, e.path))))
    services = doc.get("services", {})
    for want in ["redis", "gateway-1", "gateway-2", "gateway-3", "nginx", "demo"]:
        if want not in services:
            problem("compose has no service %s" % want)
    gateways = [s for s in services if s.startswith("gateway-")]
    for name in gateways:
        svc = services[name]
        env = svc.get("environment", {})
        for var in env:
            if var not in known["gateway"]:
                problem("%s sets %s, which the gateway does not read" % (name, var))
        if str(env.get("PORT")) != str(known["defaultPort"]):
            problem("%s: PORT %s is not the port nginx and the healthcheck use" % (name, env.get("PORT")))
        if svc.get("depends_on", {}).get("redis", {}).get("condition") != "service_healthy":
            problem("%s does not wait for a healthy redis" % name)
        hc = " ".join(svc.get("healthcheck", {}).get("test", []))
        if "/ready" not in hc and "/health" not in hc:
            problem("%s: the healthcheck does not ask /ready or /health" % name)
        grace = svc.get("stop_grace_period", "10s")
        if int(grace.rstrip("s")) <= known["shutdownTimeoutSecs"]:
            problem("%s: stop_grace_period %s is not above SHUTDOWN_TIMEOUT_SECS" % (name, grace))
        env_files = [e["path"] if isinstance(e, dict) else e for e in svc.get("env_file", [])]
        for ef in env_files:
            example = os.path.join(ROOT, ef + ".example")
            if not os.path.exists(example):
                problem("%s reads %s but %s.example does not exist" % (name, ef, ef))
            else:
                for line in open(example):
                    m = re.match(r"^([A-Z_]+)=", line)
                    if m and m.group(1) not in known["gateway"] + known["demo"]:
                        problem("%s.example sets %s, which nothing reads" % (ef, m.group(1)))
    example = open(os.path.join(ROOT, "deploy/compose/gateway.env.example")).read()
    url = re.search(r"^REDIS_URL=(.*)$", example, re.M)
    if not url or not re.match(r"redis://:[^@]+@redis:\d+", url.group(1)):
        problem("gateway.env.example's REDIS_URL does not name the redis service with a password")
    # Every container hardened: no capabilities it does not need, no privilege escalation, a
    # read-only root file system and a memory limit.
    for name, svc in services.items():
        if "ALL" not in svc.get("cap_drop", []):
            problem("%s does not drop every capability" % name)
        if svc.get("read_only") is not True:
            problem("%s has a writable root file system" % name)
        if "no-new-privileges:true" not in svc.get("security_opt", []):
            problem("%s may gain privileges (no-new-privileges)" % name)
        if "mem_limit" not in svc and "memory" not in str(svc.get("deploy", {})):
            problem("%s has no memory limit" % name)
    demo = services.get("demo", {})
    if demo.get("profiles") != ["demo"]:
        problem("the demo service is not behind `profiles: [demo]`")
    for var in demo.get("environment", {}):
        if var not in known["demo"]:
            problem("demo sets %s, which `afw-gateway demo` does not read" % var)
    if demo.get("command", [None])[0] != "demo":
        problem("the demo service does not run `afw-gateway demo`")
    redis_cmd = " ".join(services.get("redis", {}).get("command", []))
    redis_checks(redis_cmd, "compose's redis")
    # nginx: publishes the port it listens on, and its upstreams are the gateway services.
    nginx = services.get("nginx", {})
    listen = open(os.path.join(ROOT, "deploy/compose/afw-listen.conf")).read()
    lport = re.search(r"listen\s+(?:[\d.]+:)?(\d+)", listen).group(1)
    if not any(str(p).endswith(":" + lport) for p in nginx.get("ports", [])):
        problem("nginx publishes %s, not the %s it listens on" % (nginx.get("ports"), lport))
    mounted = " ".join(nginx.get("volumes", []))
    for f in ["deploy/nginx.conf", "deploy/compose/afw-upstreams.conf", "deploy/compose/afw-listen.conf"]:
        if f not in mounted:
            problem("nginx does not mount %s" % f)
    ups = re.findall(r"server\s+([\w.-]+):(\d+)", open(os.path.join(ROOT, "deploy/compose/afw-upstreams.conf")).read())
    if sorted(h for h, _ in ups) != sorted(gateways):
        problem("nginx's upstreams %s are not the gateway services %s" % (ups, gateways))
    if any(int(p) != known["defaultPort"] for _, p in ups):
        problem("an upstream port is not the gateway's")
    dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
    for want in ["EXPOSE %d" % known["defaultPort"], "STOPSIGNAL SIGTERM", "HEALTHCHECK", "USER 10001", "HOST=0.0.0.0"]:
        if want not in dockerfile:
            problem("the Dockerfile lacks %s" % want)


def redis_checks(cmd, where):
    """Redis runs with AOF, a password (refusing the placeholder), a memory ceiling and
    noeviction (an allkeys-* policy would evict event lists and queues)."""
    for want, why in [("redis-server", "runs redis-server"), ("--appendonly yes", "runs with AOF"),
                      ("--requirepass", "has a password"), ("change-me*)", "refuses the placeholder password"),
                      ("--maxmemory ", "has a memory ceiling"), ("--maxmemory-policy noeviction", "never evicts")]:
        if want not in cmd:
            problem("%s: %s (%s is missing)" % (where, why, want))


def k8s(known):
    import kubernetes_validate
    docs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy/k8s/*.yaml"))):
        for d in load_yaml_all(path):
            docs.append((os.path.basename(path), d))
            try:
                kubernetes_validate.validate(d, K8S_VERSION, strict=True)
            except Exception as e:  # the validator's errors name the field
                problem("%s: %s %s: %s" % (os.path.basename(path), d.get("kind"), d["metadata"]["name"], str(e).splitlines()[0]))
    kinds = {d["kind"] for _, d in docs}
    for want in ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap",
                 "Secret", "Ingress", "StatefulSet", "NetworkPolicy"]:
        if want not in kinds:
            problem("deploy/k8s has no %s" % want)
    config = next(d for _, d in docs if d["kind"] == "ConfigMap")
    secret = next(d for _, d in docs if d["kind"] == "Secret")
    for var in list(config["data"]) + list(secret.get("stringData", {})):
        if var not in known["gateway"]:
            problem("the ConfigMap or Secret sets %s, which the gateway does not read" % var)
    dep = next(d for _, d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    if dep["spec"]["replicas"] != 3:
        problem("the Deployment does not run 3 replicas")
    if c["readinessProbe"]["httpGet"]["path"] != "/ready" or c["livenessProbe"]["httpGet"]["path"] != "/health":
        problem("readiness must ask /ready and liveness /health")
    if c["ports"][0]["containerPort"] != int(config["data"].get("PORT", known["defaultPort"])):
        problem("the container port is not the PORT the gateway listens on")
    pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    shutdown = int(config["data"].get("SHUTDOWN_TIMEOUT_SECS", known["shutdownTimeoutSecs"]))
    if pod["terminationGracePeriodSeconds"] <= shutdown + pause:
        problem("terminationGracePeriodSeconds is not above the preStop pause plus SHUTDOWN_TIMEOUT_SECS")
    if not pod["securityContext"].get("runAsNonRoot"):
        problem("the pod may run as root")
    if "podAntiAffinity" not in pod.get("affinity", {}):
        problem("the pods have no anti-affinity")
    if "resources" not in c or "requests" not in c["resources"]:
        problem("the container has no resource requests")
    if "REDIS_URL" in config["data"]:
        problem("REDIS_URL carries Redis's password: it belongs in the Secret, not the ConfigMap")
    ingresses = [d for _, d in docs if d["kind"] == "Ingress"]
    for ing in ingresses:
        read = int(ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"])
        if read <= 60:
            problem("the Ingress read timeout (%d s) would cut a 60 s long poll" % read)
        paths = [p["path"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
        prompt = int(config["data"].get("PERMISSION_TIMEOUT_SECS", 110))
        if "/ws" not in paths and read <= prompt:
            problem("the Ingress read timeout (%d s) would cut a permission prompt held %d s" % (read, prompt))
        if not ing["spec"].get("tls"):
            problem("Ingress %s serves without TLS" % ing["metadata"]["name"])
    ws = [i for i in ingresses for r in i["spec"]["rules"] for p in r["http"]["paths"] if p["path"] == "/ws"]
    if not ws or ws[0]["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/enable-access-log") != "false":
        problem("/ws (whose ?token= carries a key) is logged by the Ingress")
    policies = [d for _, d in docs if d["kind"] == "NetworkPolicy"]
    redis_policy = [p for p in policies
                    if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "afw-redis"]
    if not redis_policy:
        problem("no NetworkPolicy keeps Redis to the gateway's pods")
    # Every pod: no service-account token; every container: hardened.
    for fname, d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = d["spec"]["template"]["spec"]
        if spec.get("automountServiceAccountToken") is not False:
            problem("%s mounts a service-account token" % d["metadata"]["name"])
        for ctr in spec["containers"]:
            sc = ctr.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True \
                    or "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problem("%s/%s: the container is not hardened (securityContext)" % (d["metadata"]["name"], ctr["name"]))
            if "limits" not in ctr.get("resources", {}):
                problem("%s/%s has no resource limits" % (d["metadata"]["name"], ctr["name"]))
    redis = next(d for _, d in docs if d["kind"] == "StatefulSet")
    (rc,) = redis["spec"]["template"]["spec"]["containers"]
    redis_checks(" ".join(rc.get("command", []) + rc.get("args", [])), "the Kubernetes redis")


def main():
    kind, known_path = sys.argv[1], sys.argv[2]
    with open(known_path) as f:
        known = json.load(f)
    {"compose": compose, "k8s": k8s}[kind](known)
    if problems:
        sys.exit(1)
    print("ok: %s" % kind)


if __name__ == "__main__":
    main()
