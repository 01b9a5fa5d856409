"""Static and executable checks of the Nextflow pipeline, without Nextflow or Docker.

1. Every .nf, .config and .nf.test file compiles with the real Groovy 4 parser (one JVM,
   tests/nextflow/GroovyParse.java; Groovy comes from the npm package npm-groovy-lint,
   installed into .tools/ by `make tools/groovy`, which `make test` runs).
2. Every `genoseg` command line of a module script parses with the CLI's own argparse
   parser, and every flag a module gets through ext.args (conf/modules.config) exists.
3. The module scripts, rendered as Nextflow would render them, run on the demo data
   (bin/genoseg on PATH) and write every output the module declares.
4. Every params.* used is defined in nextflow.config and described in
   nextflow_schema.json, and vice versa.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genoseg.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
MODULES = sorted((ROOT / "modules" / "local").glob("*/main.nf"))
SKIP_DIRS = {".git", ".tools", ".venv", "work", ".nextflow", "node_modules", "results", "demo_out", ".nf-test"}


# --------------------------------------------------------------------------- helpers

def groovy_jar() -> Path | None:
    found = sorted(TOOLS.glob("node_modules/npm-groovy-lint/lib/java/groovy/lib/groovy-4*.jar"))
    found = [p for p in found if re.fullmatch(r"groovy-4[\d.]+\.jar", p.name)]
    return found[0] if found else None


def nextflow_files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for f in filenames:
            if f.endswith((".nf", ".config", ".nf.test")):
                out.append(Path(dirpath) / f)
    return sorted(out)


def section(text: str, name: str, ends: tuple[str, ...]) -> str:
    """Text of a process section (``script:``) up to the next of ``ends`` labels."""
    m = re.search(rf"^\s*{name}:\s*$", text, re.M)
    if not m:
        return ""
    rest = text[m.end():]
    stop = [mm.start() for e in ends for mm in [re.search(rf"^\s*{e}:\s*$", rest, re.M)] if mm]
    return rest[: min(stop)] if stop else rest


def triple_quoted(text: str) -> str:
    parts = text.split('"""')
    assert len(parts) == 3, "expected one triple-quoted script string"
    return parts[1]


def render(template: str, values: dict[str, str]) -> str:
    """Render a Groovy GString the way Nextflow does for a script block."""
    def sub(m):
        expr = m.group(1).strip()
        if expr not in values:
            raise KeyError(f"no test value for ${{{expr}}}")
        return str(values[expr])
    out = re.sub(r"(?<!\\)\$\{([^}]*)\}", sub, template)
    out = out.replace("\\$", "$").replace("\\\\", "\\")
    # Nextflow strips the common indentation of a script block
    lines = out.split("\n")
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] for l in lines)


def genoseg_lines(script: str) -> list[str]:
    """`genoseg ...` command lines of a rendered script (continuations joined)."""
    joined = re.sub(r"\\\n", " ", script)
    return [l.strip() for l in joined.split("\n") if l.strip().startswith("genoseg ")]


def module_script(path: Path) -> str:
    text = path.read_text()
    return triple_quoted(section(text, "script", ("stub",)))


def module_outputs(path: Path) -> list[str]:
    out = section(path.read_text(), "output", ("when", "script", "stub"))
    return re.findall(r'path\(?\s*"([^"]+)"', out)


def process_name(path: Path) -> str:
    return re.search(r"^process\s+(\w+)", path.read_text(), re.M).group(1)


def subparsers() -> dict:
    parser = build_parser()
    for a in parser._actions:
        if a.__class__.__name__ == "_SubParsersAction":
            return dict(a.choices)
    raise AssertionError("no subcommands")


def dummy(expr: str) -> str:
    if expr in ("args", "eval_arg"):
        return ""
    if "backbone" in expr:
        return "segment_nt"
    if any(k in expr for k in ("seed", "batch", "cpus", "attempt")):
        return "2"
    return "x_" + re.sub(r"\W", "_", expr)


# --------------------------------------------------------------------------- 1. Groovy parse

def test_groovy_parses_every_nextflow_file():
    java = shutil.which("java")
    jar = groovy_jar()
    if java is None:
        pytest.skip("java not on PATH")
    if jar is None:
        pytest.skip("Groovy jars missing: run `make tools/groovy` (make test does)")
    files = nextflow_files()
    assert len(files) >= 20, files
    r = subprocess.run([java, "-cp", str(jar), str(ROOT / "tests/nextflow/GroovyParse.java"),
                        *map(str, files)], capture_output=True, text=True, timeout=120)
    results = {line.split("\t")[1]: line for line in r.stdout.splitlines() if "\t" in line}
    errors = [line for line in r.stdout.splitlines() if line.startswith("ERROR")]
    assert not errors and r.returncode == 0, "\n".join(errors) or r.stderr
    assert set(results) == {str(f) for f in files}


def test_groovy_harness_rejects_a_syntax_error(tmp_path):
    java, jar = shutil.which("java"), groovy_jar()
    if java is None or jar is None:
        pytest.skip("java or Groovy jars missing (make tools/groovy)")
    bad = tmp_path / "bad.nf"
    bad.write_text("process X {\n    input:\n    tuple val(meta), path(x\n}\n")
    good = tmp_path / "good.config"
    good.write_text("process { withLabel:process_gpu { accelerator = 1 } }\n")
    r = subprocess.run([java, "-cp", str(jar), str(ROOT / "tests/nextflow/GroovyParse.java"), str(bad), str(good)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert f"ERROR\t{bad}" in r.stdout and f"OK\t{good}" in r.stdout


# --------------------------------------------------------------------------- 2. CLI flags

@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.parent.name)
def test_module_command_lines_parse_with_the_real_cli(module):
    subs = subparsers()
    script = module_script(module)
    exprs = set(re.findall(r"(?<!\\)\$\{([^}]*)\}", script))
    rendered = render(script, {e.strip(): dummy(e.strip()) for e in exprs})
    lines = genoseg_lines(rendered)
    calls = [l for l in lines if not l.startswith("genoseg --version")]
    assert calls, f"{module}: no genoseg command in script"
    for line in calls:
        argv = line.split()[1:]
        if argv[0] not in subs:
            pytest.skip(f"`genoseg {argv[0]}` is not implemented yet")
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{module.parent.name}: `{line}` rejected by the CLI parser (exit {exc.code})")
    # the script holds no logic besides genoseg: only genoseg lines and the versions heredoc
    body = [l for l in rendered.split("\n") if l.strip()]
    allowed = re.compile(r"^(genoseg |cat <<-END_VERSIONS|\"GENOSEG|\"x_task|END_VERSIONS|    genoseg: )")
    for l in body:
        if not l.startswith(" "):
            assert allowed.match(l) or l.startswith("--"), f"{module}: unexpected script line {l!r}"


def test_ext_args_flags_exist():
    """Flags that conf/modules.config adds through ext.args exist in the target subcommand."""
    subs = subparsers()
    conf = (ROOT / "conf/modules.config").read_text()
    by_process = {process_name(m): m for m in MODULES}
    checked = 0
    for m in re.finditer(r"withName:\s*'([^']+)'\s*\{(.*?)\n    \}", conf, re.S):
        name = m.group(1).split(":")[-1]
        assert name in by_process, f"modules.config selects unknown process {m.group(1)}"
        flags = re.findall(r"\"(--[a-z][a-z0-9-]*)", m.group(2)) + re.findall(r"'(--[a-z][a-z0-9-]*)'", m.group(2))
        if not flags:
            continue
        sub = genoseg_lines(module_script(by_process[name]))[0].split()[1]
        if sub not in subs:
            continue
        known = {o for a in subs[sub]._actions for o in a.option_strings}
        for f in flags:
            assert f in known, f"{name}: ext.args flag {f} is not an option of `genoseg {sub}`"
            checked += 1
    assert checked >= 1


# --------------------------------------------------------------------------- 3. outputs

GOLDEN_MODELS = [ROOT / "assets/demo_model", ROOT / "tests/data/golden/segment_nt_tiny"]


class Runner:
    """Runs a module's script in its own directory the way a Nextflow task would."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env["PATH"] = f"{ROOT / 'bin'}:{Path(sys.executable).parent}:{self.env['PATH']}"
        self.env["GENOSEG_PYTHON"] = sys.executable
        self.env["JAX_PLATFORMS"] = "cpu"

    def run(self, module: str, stage: dict[str, Path], values: dict[str, str]) -> Path:
        path = ROOT / "modules/local" / module / "main.nf"
        sub = genoseg_lines(module_script(path))[0].split()[1]
        if sub not in subparsers():
            pytest.skip(f"`genoseg {sub}` is not implemented yet (module {module})")
        work = self.tmp / module
        work.mkdir()
        for name, target in stage.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).symlink_to(target)
        vals = {"args": "", "task.process": f"GENOSEG_{module.upper()}", "task.cpus": "2", **values}
        script = render(module_script(path), vals)
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=self.env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{module} failed:\n{script}\n{r.stderr[-3000:]}"
        for pattern in module_outputs(path):
            pat = render(pattern, vals)
            assert glob.glob(str(work / pat)), f"{module}: declared output {pat!r} not written"
        versions = (work / "versions.yml").read_text()
        assert re.search(r"genoseg: \d", versions), versions
        return work


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return Runner(tmp_path_factory.mktemp("nf_tasks"))


@pytest.fixture(scope="module")
def genome(demo):
    sim = demo.run("simulate", {}, {"seed": "7"})
    prep = demo.run("prepare_genome", {"input/genome.fa": sim / "sim/genome.fa"},
                    {"fasta": "input/genome.fa", "prefix": "demo"})
    return sim, prep


def test_genome_modules_write_their_declared_outputs(genome):
    sim, prep = genome
    assert (prep / "demo.fa.fai").read_text().strip()


@pytest.mark.slow
def test_module_scripts_write_their_declared_outputs(demo, genome):
    sim, prep = genome
    fasta, fai = prep / "demo.fa", prep / "demo.fa.fai"
    model = next((m for m in GOLDEN_MODELS if (m / "jax_model").is_dir()), None)
    assert model is not None
    plan = demo.run("plan_windows", {"genome.fa": fasta, "genome.fa.fai": fai, "model": model},
                    {"fasta": "genome.fa", "model": "model",
                     "args": "--backbone segment_nt --contigs chr3 --windows-per-chunk 64"})
    chunks = sorted((plan / "plan/chunks").glob("chunk_*.json"))
    assert len(chunks) >= 2  # a real scatter/gather
    parquets = []
    for chunk in chunks:
        demo.run("predict", {"chunk.json": chunk, "genome.fa": fasta, "genome.fa.fai": fai, "model": model},
                     {"fasta": "genome.fa", "model": "model", "chunk": "chunk.json", "meta.backbone": "segment_nt",
                      "batch_size": "4", "prefix": chunk.stem})
        demo.tmp.joinpath("predict").rename(demo.tmp / f"predict_{chunk.stem}")
        parquets.append(demo.tmp / f"predict_{chunk.stem}" / f"{chunk.stem}.parquet")
    stage = {"plan.json": plan / "plan/plan.json", **{f"chunks/{p.name}": p for p in parquets}}
    col = demo.run("collect", stage, {"plan": "plan.json", "parquets": " ".join(f"chunks/{p.name}" for p in parquets),
                                      "meta.backbone": "segment_nt"})
    pred = col / "segment_nt/predictions"
    calls = demo.run("call", {"predictions": pred, "genome.fa.fai": fai}, {"predictions": "predictions", "fai": "genome.fa.fai"})
    tracks = demo.run("tracks", {"predictions": pred, "genome.fa.fai": fai}, {"predictions": "predictions", "fai": "genome.fa.fai"})
    ev = demo.run("evaluate", {"calls": calls / "calls", "truth.gff3": sim / "sim/truth.gff3", "genome.fa.fai": fai},
                  {"calls": "calls", "truth": "truth.gff3", "fai": "genome.fa.fai"})
    demo.run("report", {"plan.json": plan / "plan/plan.json", "run/predictions": pred, "run/calls": calls / "calls",
                        "run/tracks": tracks / "tracks", "evaluation.tsv": ev / "evaluation.tsv"},
             {"plan": "plan.json", "eval_arg": "--evaluation evaluation.tsv"})


def test_fetch_model_module_against_a_local_hub(demo):
    from fakehub import FakeHub
    from test_fetch_model import COMMIT, NT_FILES
    with FakeHub() as fake:
        fake.add("InstaDeepAI/segment_nt", NT_FILES, COMMIT, refs=("abc123",))
        demo.env["HF_TOKEN"] = ""
        demo.env["HF_HOME"] = str(demo.tmp / "hf_home")  # the Hugging Face cache of this test only
        w = demo.run("fetch_model", {}, {"meta.backbone": "segment_nt", "meta.repo": "InstaDeepAI/segment_nt",
                                         "meta.revision": "abc123", "args": f"--endpoint {fake.endpoint}"})
    assert (w / "segment_nt/abc123/jax_model/pytree_ckpt.joblib").is_file()
    assert (w / "segment_nt/abc123/jax_model/pytree_ckpt.safetensors").is_file()


# --------------------------------------------------------------------------- 4. params

def _params_block_names(text: str) -> set[str]:
    """Top-level names assigned inside `params { ... }` blocks of a config file."""
    names, depth, inside = set(), 0, None
    for line in re.sub(r"/\*.*?\*/", "", text, flags=re.S).split("\n"):
        line = line.split("//")[0] if "://" not in line else line
        s = line.strip()
        if inside is None and re.match(r"^params\s*\{", s):
            inside, depth = True, 0
        if inside:
            if depth == 1:
                m = re.match(r"^([A-Za-z_]\w*)\s*=", s) or re.match(r"^([A-Za-z_]\w*)\s*\{", s)
                if m:
                    names.add(m.group(1))
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                inside = None
        for m in re.finditer(r"\bparams\.([A-Za-z_]\w*)\s*=(?!=)", line):
            names.add(m.group(1))
    return names


def test_params_defined_documented_and_used():
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    documented = {k for d in schema["$defs"].values() for k in d["properties"]}
    refs = {r["$ref"].split("/")[-1] for r in schema["allOf"]}
    assert refs == set(schema["$defs"])
    for d in schema["$defs"].values():
        for k, p in d["properties"].items():
            assert p.get("description"), f"schema: {k} has no description"
    defined = _params_block_names((ROOT / "nextflow.config").read_text())
    used = set()
    for f in nextflow_files():
        if f.name.endswith(".nf.test"):
            continue
        text = f.read_text()
        used |= set(re.findall(r"(?<![\w/.])params\.([A-Za-z_]\w*)", text))
        if f.parent.name == "conf":
            profile_set = _params_block_names(text) - {"genomes", "models"}
            assert profile_set <= defined, f"{f.name} sets params not in nextflow.config: {profile_set - defined}"
    assert used <= defined, f"params used but not defined in nextflow.config: {sorted(used - defined)}"
    assert defined == documented, (f"nextflow.config vs nextflow_schema.json: only in config {sorted(defined - documented)}, "
                                   f"only in schema {sorted(documented - defined)}")
    unused = defined - used - {"help", "help_full", "show_hidden", "trace_report_suffix"}
    assert not unused, f"params defined but never used: {sorted(unused)}"


def test_schema_defaults_match_config():
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    cfg = (ROOT / "nextflow.config").read_text()
    for d in schema["$defs"].values():
        for k, p in d["properties"].items():
            if "default" in p:
                m = re.search(rf"^\s*{k}\s*=\s*(.+?)\s*$", cfg, re.M)
                assert m, k
                val = m.group(1).strip("'\"")
                want = str(p["default"]).lower() if isinstance(p["default"], bool) else str(p["default"])
                assert val == want, f"{k}: config {val!r} vs schema {want!r}"


def test_layout_and_module_anatomy():
    for d in ("workflows/segment_nt.nf", "workflows/segment_enformer.nf", "workflows/segment_borzoi.nf",
              "conf/base.config", "conf/genomes.config", "conf/test.config", "bin/genoseg",
              "nf-test.config", "tests/main.nf.test"):
        assert (ROOT / d).exists(), d
    assert os.access(ROOT / "bin/genoseg", os.X_OK)
    for m in MODULES:
        text = m.read_text()
        for needle in ("tag ", "label ", "tuple val(meta)", "emit: versions", "task.ext.args", "stub:",
                       "versions.yml", "genoseg --version"):
            assert needle in text, f"{m}: missing {needle!r}"
        assert (m.parent / "tests/main.nf.test").is_file(), f"{m.parent}: no nf-test"
    genomes = (ROOT / "conf/genomes.config").read_text()
    for key in ("hg38", "hg19", "GRCh38", "T2T-CHM13", "mm10", "mm39"):
        assert f"'{key}'" in genomes
    base = (ROOT / "conf/base.config").read_text()
    for needle in ("withLabel:process_single", "withLabel:process_low", "withLabel:process_medium",
                   "withLabel:process_high", "withLabel:process_gpu", "accelerator", "--gpus all", "--nv",
                   "params.gpu_queue", "maxForks", "task.exitStatus == 75"):
        assert needle in base, needle
    cfg = (ROOT / "nextflow.config").read_text()
    for prof in ("test", "docker", "singularity", "apptainer", "conda", "gpu", "slurm", "awsbatch", "google", "local"):
        assert re.search(rf"^\s*{prof}\s*\{{", cfg, re.M), prof
    assert re.search(r"id 'nf-schema@2\.\d+\.\d+'", cfg)
    assert "validateParameters()" in (ROOT / "main.nf").read_text()


def test_predict_oom_exit_code_matches_the_retry_rule(tmp_path, monkeypatch, capsys):
    """Out of accelerator memory: `genoseg predict` exits with the status the GPU label retries on."""
    from genoseg.commands import predict as predict_cmd
    import genoseg.predict

    retry = re.search(r"task\.exitStatus == (\d+)", (ROOT / "conf/base.config").read_text())
    assert retry and int(retry.group(1)) == predict_cmd.EXIT_DEVICE_OOM

    model = GOLDEN_MODELS[1]
    fasta = _tiny_fasta(tmp_path)
    assert main(["plan", "--fasta", str(fasta), "--model", str(model),
                 "--window-length", "192", "--outdir", str(tmp_path / "plan")]) == 0

    def oom(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 81.2GiB")

    monkeypatch.setattr(genoseg.predict, "predict_chunk", oom)
    out = tmp_path / "c.parquet"
    rc = main(["predict", "--fasta", str(fasta), "--model", str(model),
               "--chunk", str(tmp_path / "plan/chunks/chunk_00000.json"), "--out", str(out)])
    assert rc == predict_cmd.EXIT_DEVICE_OOM
    assert "smaller --batch-size" in capsys.readouterr().err
    assert not out.exists()


def _tiny_fasta(tmp_path):
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 600))
    path = tmp_path / "g.fa"
    path.write_text(f">c1\n{seq}\n")
    return path
