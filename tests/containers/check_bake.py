"""check_bake.py docker-bake.hcl: parse the bake file (python-hcl2) and check what it builds.

No buildx here, so this expands the one matrix target the way bake does (variables at their
defaults, ${...} interpolation of variables and matrix values) and checks: the group `default`
builds exactly python12, python13 and python13-distroless; each has the seed's tag
(ghcr.io/vardr/fastapi:NAME) and a versioned one, linux/amd64 and linux/arm64, an SBOM and
max-mode provenance; its build target and the variant stage its PYTHON_VERSION/DISTROLESS select
exist in the Dockerfile, and every build argument it passes is declared there.
"""

import itertools
import os
import re
import sys

import hcl2

WANT = {"python12": ("3.12", "true"), "python13": ("3.13", "false"), "python13-distroless": ("3.13", "true")}


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(doc, kind):
    """{name: body} of the blocks of one kind (python-hcl2 keeps the label's quotes)."""
    return {unquote(name): body for block in doc.get(kind, []) for name, body in block.items()}


def evaluate(expr, scope):
    """An HCL string or expression with the little bake uses here: quoted strings with ${...}
    interpolation, bare references (VERSION, variant.name), and split(",", X)."""
    expr = expr.strip()
    if expr.startswith('"') and expr.endswith('"'):
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(evaluate(m.group(1), scope)), expr[1:-1])
    if expr.startswith("${") and expr.endswith("}"):
        return evaluate(expr[2:-1], scope)
    call = re.fullmatch(r'split\(\s*(?:\\)?"(.*?)(?:\\)?"\s*,\s*(.+)\)', expr)
    if call:
        return str(evaluate(call.group(2), scope)).split(call.group(1))
    if expr in scope:
        return scope[expr]
    sys.exit(f"check_bake: cannot evaluate {expr!r}")


def main():
    path = sys.argv[1]
    with open(path) as f:
        doc = hcl2.load(f)
    scope = {}
    for name, body in blocks(doc, "variable").items():
        scope[name] = os.environ.get(name, unquote(body.get("default", "")))
    for required in ("REGISTRY", "VERSION", "PLATFORMS", "GIT_COMMIT", "BUILD_DATE"):
        if required not in scope:
            sys.exit(f"check_bake: no variable {required}")
    dockerfile = open(os.path.join(os.path.dirname(os.path.abspath(path)), "Dockerfile")).read()
    stages = set(re.findall(r"^FROM\s+\S+(?:\s+\S+)*?\s+AS\s+(\S+)", dockerfile, re.M | re.I))
    declared = set(re.findall(r"^ARG\s+([A-Z0-9_]+)", dockerfile, re.M))

    built = {}
    for template, body in blocks(doc, "target").items():
        matrix = body.get("matrix", {})
        keys = list(matrix)
        for combo in itertools.product(*(matrix[k] for k in keys)) if keys else [()]:
            local = dict(scope)
            for key, value in zip(keys, combo):
                for field, v in value.items():
                    local[f"{key}.{field}"] = unquote(v)
            name = evaluate(body["name"], local) if "name" in body else template
            built[name] = {
                "tags": [evaluate(t, local) for t in body.get("tags", [])],
                "platforms": evaluate(body["platforms"], local) if isinstance(body.get("platforms"), str)
                else [evaluate(p, local) for p in body.get("platforms", [])],
                "args": {k: str(evaluate(v, local)) for k, v in body.get("args", {}).items()},
                "attest": [evaluate(a, local) for a in body.get("attest", [])],
                "target": evaluate(body["target"], local) if "target" in body else None,
            }

    group = [unquote(t) for t in blocks(doc, "group").get("default", {}).get("targets", [])]
    problems = []
    if sorted(group) != sorted(WANT):
        problems.append(f"group default builds {group}, not {sorted(WANT)}")
    for name, (python, distroless) in WANT.items():
        t = built.get(name)
        if t is None:
            problems.append(f"no target {name}")
            continue
        registry, version = scope["REGISTRY"], scope["VERSION"]
        for tag in (f"{registry}/fastapi:{name}", f"{registry}/fastapi:{version}-{name}"):
            if tag not in t["tags"]:
                problems.append(f"{name}: no tag {tag} in {t['tags']}")
        if sorted(t["platforms"]) != ["linux/amd64", "linux/arm64"]:
            problems.append(f"{name}: platforms {t['platforms']}")
        if "type=sbom" not in t["attest"] or "type=provenance,mode=max" not in t["attest"]:
            problems.append(f"{name}: attest {t['attest']}")
        if (t["args"].get("PYTHON_VERSION"), t["args"].get("DISTROLESS")) != (python, distroless):
            problems.append(f"{name}: args {t['args']}")
        stage = f"py{t['args'].get('PYTHON_VERSION')}-distroless-{t['args'].get('DISTROLESS')}"
        if stage not in stages:
            problems.append(f"{name}: its variant stage {stage} is not in the Dockerfile")
        if t["target"] not in stages:
            problems.append(f"{name}: build target {t['target']} is not a Dockerfile stage")
        for arg in t["args"]:
            if arg not in declared:
                problems.append(f"{name}: build arg {arg} is not declared in the Dockerfile")
        print(f"bake: {name}: target {t['target']} (stage {stage}), {','.join(t['platforms'])}, "
              f"tags {' '.join(t['tags'])}, attest {'; '.join(t['attest'])}")
    if problems:
        sys.exit("check_bake: " + "\ncheck_bake: ".join(problems))
    print(f"bake: {path} parses; group default = {', '.join(group)}")


if __name__ == "__main__":
    main()
