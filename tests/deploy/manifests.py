#!/usr/bin/python3
"""Checks that the deployment files parse and agree with each other.

    tests/deploy/manifests.py [SOURCE_ROOT]

deploy/Dockerfile fixes the user, port, volume and health check; the compose
files and the Kubernetes manifests must use the same ones and keep the
security settings deploy/README.md promises. No cluster or engine is needed:
tests/deploy/run is what builds and runs the image. Exits 0 when every check
holds, 1 with a list of what failed, 77 (skipped) without PyYAML.
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("manifests: skipped: no PyYAML (Debian: python3-yaml)", file=sys.stderr)
    sys.exit(77)

failures = []
passed = 0


def expect(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def dockerfile_facts(path):
    with open(path) as f:
        text = f.read()
    lines = [l.strip() for l in text.splitlines()]
    code = [l for l in lines if l and not l.startswith("#")]
    facts = {}
    expect(not any(re.match(r"#\s*syntax\s*=", l, re.I) for l in lines), "Dockerfile has no # syntax= line")
    expect(code[0] == "ARG BASE=debian:bookworm-slim", "Dockerfile starts with ARG BASE=debian:bookworm-slim")
    froms = [l for l in code if l.startswith("FROM ")]
    expect(len(froms) >= 2 and all(l.startswith("FROM ${BASE}") for l in froms),
           "Dockerfile: every stage is FROM ${BASE}, at least two")
    user = [l.split()[1] for l in code if l.startswith("USER ")]
    expect(len(user) == 1 and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user[0] or ""),
           "Dockerfile: one USER, numeric UID:GID, not root")
    facts["uid"], facts["gid"] = (int(x) for x in user[0].split(":")) if user else (None, None)
    m = re.search(r"^EXPOSE (\d+)$", text, re.M)
    facts["port"] = int(m.group(1)) if m else None
    m = re.search(r"BATCHNORMD_LISTEN=0\.0\.0\.0:(\d+)", text)
    expect(m and int(m.group(1)) == facts["port"], "Dockerfile: BATCHNORMD_LISTEN 0.0.0.0 on the EXPOSEd port")
    m = re.search(r'^VOLUME \["([^"]+)"\]$', text, re.M)
    facts["volume"] = m.group(1) if m else None
    expect(facts["volume"] == "/var/lib/batchnormd", "Dockerfile: VOLUME /var/lib/batchnormd")
    m = re.search(r'^\s*CMD \["([^"]+)"\]$', text, re.M)
    facts["healthcheck"] = m.group(1) if m else None
    expect("HEALTHCHECK" in text and facts["healthcheck"], "Dockerfile: a HEALTHCHECK with an exec-form CMD")
    runtime = text[text.rfind("FROM ${BASE}"):]
    expect(not re.search(r"\b(gcc|meson|ninja-build|-dev)\b", runtime),
           "Dockerfile: the runtime stage installs no compiler or -dev package")
    for pkg in ("libmicrohttpd12", "libjansson4", "libsqlite3-0"):
        expect(pkg in runtime, f"Dockerfile: the runtime stage installs {pkg}")
    return facts


def check_compose(path, df):
    (doc,) = load_all(path)
    svc = doc["services"]["batchnormd"]
    ports = svc.get("ports", [])
    expect(len(ports) == 1 and ports[0].startswith("${BATCHNORMD_PUBLISH:-127.0.0.1:")
           and ports[0].endswith(f":{df['port']}"),
           "compose: one port, published on 127.0.0.1 by default")
    env = dict(e.split("=", 1) for e in svc["environment"] if "=" in e)
    secrets = svc.get("secrets", [])
    expect(len(secrets) == 1 and secrets[0] in doc.get("secrets", {})
           and "file" in doc["secrets"][secrets[0]],
           "compose: the token is a file secret")
    expect(secrets and env.get("BATCHNORMD_TOKEN_FILE") == f"/run/secrets/{secrets[0]}",
           "compose: BATCHNORMD_TOKEN_FILE is the secret's path")
    vols = [v for v in svc.get("volumes", []) if v.endswith(":" + str(df["volume"]))]
    expect(len(vols) == 1 and vols[0].split(":")[0] in (doc.get("volumes") or {}),
           "compose: a named volume on the database directory")
    expect(svc.get("user") == f"{df['uid']}:{df['gid']}", "compose: the image's user")
    expect(svc.get("healthcheck", {}).get("test") == ["CMD", df["healthcheck"]],
           "compose: the image's health check")
    expect(svc.get("read_only") is True and "ALL" in svc.get("cap_drop", []),
           "compose: read-only root, all capabilities dropped")
    expect(any(t.split(":")[0] == "/tmp" for t in svc.get("tmpfs", [])), "compose: /tmp on tmpfs")


def check_compose_postgres(deploy, df):
    """compose.postgres.yaml builds every image it runs, from deploy/postgres/ on the same base."""
    (doc,) = load_all(os.path.join(deploy, "compose.postgres.yaml"))
    services = doc["services"]
    for name, svc in services.items():
        image = svc.get("image", "")
        built = [s for s in services.values() if s.get("image") == image and "build" in s]
        expect(image.startswith("${") and built,
               f"compose.postgres: {name}'s image is a variable and a service builds it (no registry pull)")
        args = svc.get("build", {}).get("args", [])
        if "build" in svc:
            expect("BASE=${BATCHNORMD_BASE:-batchnormd-base:bookworm}" in args,
                   f"compose.postgres: {name} is built on deploy/build-base's image")
    pg = services["postgres"]
    expect(pg.get("build", {}).get("context") == "postgres", "compose.postgres: postgres is built from deploy/postgres")
    expect("ports" not in pg, "compose.postgres: PostgreSQL's port is not published")
    expect(pg.get("healthcheck", {}).get("test", [None, None])[1] == "pg_isready",
           "compose.postgres: postgres's health check is pg_isready")
    expect(pg.get("user") == f"{df['uid']}:{df['gid']}" and pg.get("read_only") is True
           and "ALL" in pg.get("cap_drop", []), "compose.postgres: postgres as 10001, read-only, no capabilities")
    replicas = [s for n, s in services.items() if n.startswith("batchnormd-")]
    expect(len(replicas) == 3, "compose.postgres: three replicas")
    for svc in replicas:
        env = dict(e.split("=", 1) for e in svc["environment"] if "=" in e)
        expect(env.get("BATCHNORMD_STORE", "").startswith("postgresql://")
               and ":" not in env["BATCHNORMD_STORE"].split("//", 1)[1].split("@")[0],
               "compose.postgres: replicas on PostgreSQL, no password in the URL")
        expect(env.get("BATCHNORMD_STORE_PASSWORD_FILE", "").startswith("/run/secrets/"),
               "compose.postgres: the password is a secret file")
        ports = svc.get("ports", [])
        expect(len(ports) == 1 and ports[0].startswith("${BATCHNORMD_PUBLISH_HOST:-127.0.0.1}:"),
               "compose.postgres: each replica publishes one port, on 127.0.0.1 by default")
    with open(os.path.join(deploy, "postgres", "Dockerfile")) as f:
        code = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    expect(code[0] == "ARG BASE=debian:bookworm-slim" and code[1] == "FROM ${BASE}",
           "postgres/Dockerfile: FROM ${BASE}, as deploy/Dockerfile")
    expect(f"USER {df['uid']}:{df['gid']}" in code, "postgres/Dockerfile: USER 10001:10001")


def check_k8s(folder, df):
    docs = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            for d in load_all(os.path.join(folder, name)):
                expect("kind" in d and "apiVersion" in d, f"k8s/{name}: every document has kind and apiVersion")
                docs.setdefault(d.get("kind"), []).append((name, d))
    kust = docs["Kustomization"][0][1]
    listed = set(kust["resources"])
    present = {n for n in os.listdir(folder) if n.endswith(".yaml") and n != "kustomization.yaml"}
    expect(listed == present, "k8s: kustomization.yaml lists every manifest")

    ((_, sts),) = docs["StatefulSet"]
    spec = sts["spec"]
    expect(spec["replicas"] == 1, "k8s: one replica (one SQLite file)")
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    expect(spec["selector"]["matchLabels"].items() <= labels.items(), "k8s: the selector matches the pod")
    psc = pod["securityContext"]
    expect(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == df["uid"]
           and psc.get("runAsGroup") == df["gid"] and psc.get("fsGroup") == df["gid"],
           "k8s: pod runs as the image's non-root UID/GID, volume group is its GID")
    expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "k8s: seccomp RuntimeDefault")
    (c,) = pod["containers"]
    csc = c["securityContext"]
    expect(csc.get("allowPrivilegeEscalation") is False, "k8s: allowPrivilegeEscalation false")
    expect(csc.get("readOnlyRootFilesystem") is True, "k8s: readOnlyRootFilesystem")
    expect(csc.get("capabilities", {}).get("drop") == ["ALL"], "k8s: drop ALL capabilities")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expect(ports.get("http") == df["port"], "k8s: containerPort http is the image's port")
    env = {e["name"]: e.get("value") for e in c["env"]}
    expect(env.get("BATCHNORMD_LISTEN") == f"0.0.0.0:{df['port']}", "k8s: listens on the container port")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        expect(get.get("path") == path and get.get("port") == "http", f"k8s: {probe} on {path}")
    res = c.get("resources", {})
    expect("memory" in res.get("requests", {}) and "memory" in res.get("limits", {})
           and "cpu" in res.get("requests", {}), "k8s: cpu and memory requests, memory limit")
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    claims = {t["metadata"]["name"]: t for t in spec["volumeClaimTemplates"]}
    data = [n for n, m in mounts.items() if m["mountPath"] == df["volume"]]
    expect(len(data) == 1 and data[0] in claims
           and claims[data[0]]["spec"]["accessModes"] == ["ReadWriteOnce"],
           "k8s: the database directory is a ReadWriteOnce volumeClaimTemplate")
    expect(env.get("BATCHNORMD_DB", "").startswith(df["volume"] + "/"), "k8s: the database is on that volume")
    vols = {v["name"]: v for v in pod["volumes"]}
    secret_mounts = [m for n, m in mounts.items() if "secret" in vols.get(n, {})]
    expect(len(secret_mounts) == 1 and secret_mounts[0].get("readOnly") is True
           and env.get("BATCHNORMD_TOKEN_FILE", "").startswith(secret_mounts[0]["mountPath"] + "/"),
           "k8s: BATCHNORMD_TOKEN_FILE is in a read-only Secret mount")
    mode = next((v["secret"].get("defaultMode") for v in vols.values() if "secret" in v), None)
    expect(mode is not None and mode & 0o040 and not mode & 0o007,
           "k8s: the Secret is readable by the pod's group (fsGroup), not by others")
    expect(any(m["mountPath"] == "/tmp" and "emptyDir" in vols.get(n, {}) for n, m in mounts.items()),
           "k8s: /tmp is an emptyDir (the root is read-only)")
    expect(pod.get("automountServiceAccountToken") is False, "k8s: no service account token")

    services = [d for _, d in docs["Service"]]
    expect(any(s["spec"].get("clusterIP") == "None" and s["metadata"]["name"] == spec["serviceName"]
               for s in services), "k8s: the StatefulSet's serviceName is a headless Service")
    for s in services:
        expect(s["spec"]["selector"].items() <= labels.items()
               and all(p["targetPort"] in ports for p in s["spec"]["ports"]),
               f"k8s: Service {s['metadata']['name']} selects the pod and targets a named port")


def main():
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                          else os.path.join(os.path.dirname(__file__), "..", ".."))
    deploy = os.path.join(src, "deploy")
    df = dockerfile_facts(os.path.join(deploy, "Dockerfile"))
    check_compose(os.path.join(deploy, "compose.yaml"), df)
    check_compose_postgres(deploy, df)
    check_k8s(os.path.join(deploy, "k8s"), df)
    for f in failures:
        print(f"manifests: FAIL: {f}", file=sys.stderr)
    print(f"manifests: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
