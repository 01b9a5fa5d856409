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
import gzip
import hashlib
import json
import os
import re
import shlex
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
    if expr in ("args", "eval_arg", "genes_arg"):
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

    def run(self, module: str, stage: dict[str, Path], values: dict[str, str], script: str | None = None) -> Path:
        """`script`: the task's command as the config harness rendered it; otherwise the
        module's script is rendered here from `values`."""
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
        script = script if script is not None else render(module_script(path), vals)
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


def stage_index(chunk: Path) -> list[Path]:
    """The index files of a chunk's staged sequence (what predict stages beside it)."""
    seq = chunk.with_suffix(".fa.gz")
    return [p for p in (Path(f"{seq}.fai"), Path(f"{seq}.gzi")) if p.exists()]


SNAPSHOT = ROOT / "tests/main.nf.test.snap"
PIPELINE_TEST = "segment_nt: predictions, calls, tracks, genes, report and pipeline_info"


def output_snapshot(bdir: Path) -> list:
    """What tests/main.nf.test snapshots of OUTDIR/segment_nt (computed the same way
    there): md5 of each BED's decompressed text, of calls.gff3 and genes.gff3, and the
    prediction rows per contig from the dataset index."""
    beds = {p.name: hashlib.md5(gzip.decompress(p.read_bytes())).hexdigest()
            for p in sorted((bdir / "calls").glob("*.bed.gz"), key=lambda p: p.name)}
    rows = json.loads((bdir / "predictions/_genoseg.json").read_text())["rows"]
    md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731
    return [beds, md5(bdir / "calls/calls.gff3"), rows, md5(bdir / "genes/genes.gff3")]


def render_tasks(configs, tasks: list[dict], tmp: Path) -> list[str]:
    """Scripts of `tasks` (module_task(..., render_inputs=...)) as -profile test renders
    them: the module's script section evaluated by the harness with the configuration's
    ext.args/batch size, the task's cpus and the staged input names."""
    run = {"id": "render", "profiles": ["test"], "params": {"outdir": "/results"},
           "workflow": {"workDir": str(configs.workdir)}, "tasks": tasks}
    answer = eval_config([run], tmp)["render"]
    assert "failure" not in answer, answer.get("failure")
    return [t[0]["script"] for t in answer["tasks"]]


@pytest.mark.slow
def test_module_scripts_write_their_declared_outputs(demo, genome, configs):
    """The module scripts as -profile test renders them (script sections evaluated with the
    configuration's ext.args, batch size and the staged input names, by the harness) run
    as a chain on the demo genome, each writes what it declares, and the results are
    those tests/main.nf.test expects of the real pipeline run (its snapshot)."""
    run = configs["test"]
    params = run["params"]
    sim, prep = genome
    fasta, fai = prep / "demo.fa", prep / "demo.fa.fai"
    source = Path(params["model_dir"])
    assert source == ROOT / "assets/demo_model" and int(params["simulate_seed"]) == 7
    jax_cache = run["calls"][0]["value"]  # created at start by main.nf, as here
    Path(jax_cache).mkdir(parents=True)
    convert_sh, plan_sh = render_tasks(configs, [
        module_task("convert_model", render_inputs={"model": "source/demo_model"}),
        module_task("plan_windows", render_inputs={"fasta": "genome.fa", "fai": "genome.fa.fai", "model": "model"})],
        demo.tmp)
    conv = demo.run("convert_model", {"source/demo_model": source}, {"meta.backbone": "segment_nt"}, convert_sh)
    model = conv / "converted"
    assert (model / "convert.json").is_file() and not list(model.rglob("*.joblib"))
    plan = demo.run("plan_windows", {"genome.fa": fasta, "genome.fa.fai": fai, "model": model}, {}, plan_sh)
    chunks = sorted((plan / "plan/chunks").glob("chunk_*.json"))
    assert len(chunks) >= 2  # a real scatter/gather
    parquets = [f"{c.stem}.parquet" for c in chunks]
    pred_in, ev_in = {"predictions": "predictions", "fai": "genome.fa.fai"}, {"calls": "calls", "genes": "genes",
                     "truth": "truth.gff3", "truth_genes": "truth_genes.gff3", "fai": "genome.fa.fai"}
    tasks = [module_task("predict", meta_extra={"chunk": c.stem}, render_inputs={
                 "chunk": c.name, "sequence": f"{c.stem}.fa.gz", "sequence_index": [p.name for p in stage_index(c)],
                 "model": "model", "weights_sha256": "0" * 64}) for c in chunks]
    tasks += [module_task("collect", render_inputs={"plan": "plan.json", "parquets": [f"chunks/{p}" for p in parquets]}),
              module_task("call", render_inputs=pred_in), module_task("tracks", render_inputs=pred_in),
              module_task("genes", render_inputs={**pred_in, "fasta": "genome.fa"}),
              module_task("evaluate", render_inputs=ev_in),
              module_task("report", render_inputs={"plan": "plan.json", "predictions": "run/predictions", "calls": "run/calls",
                                                   "tracks": "run/tracks", "genes": "run/genes", "evaluation": "evaluation.tsv",
                                                   "gene_evaluation": "evaluation_genes.tsv", "truth_genes": "truth_genes.gff3"})]
    *predict_sh, collect_sh, call_sh, tracks_sh, genes_sh, eval_sh, report_sh = render_tasks(configs, tasks, demo.tmp)
    assert all("--device cpu" in sh and f"--jax-cache-dir '{jax_cache}'" in sh for sh in predict_sh)
    for chunk, sh in zip(chunks, predict_sh):
        stage = {chunk.name: chunk, f"{chunk.stem}.fa.gz": chunk.with_suffix(".fa.gz"), "model": model,
                 **{p.name: p for p in stage_index(chunk)}}
        demo.run("predict", stage, {"prefix": chunk.stem}, sh)
        demo.tmp.joinpath("predict").rename(demo.tmp / f"predict_{chunk.stem}")
    stage = {"plan.json": plan / "plan/plan.json", **{f"chunks/{p}": demo.tmp / f"predict_{p[:-8]}" / p for p in parquets}}
    col = demo.run("collect", stage, {"meta.backbone": "segment_nt"}, collect_sh)
    pred = col / "segment_nt/predictions"
    calls = demo.run("call", {"predictions": pred, "genome.fa.fai": fai}, {}, call_sh)
    tracks = demo.run("tracks", {"predictions": pred, "genome.fa.fai": fai}, {}, tracks_sh)
    genes = demo.run("genes", {"predictions": pred, "genome.fa": fasta, "genome.fa.fai": fai}, {}, genes_sh)
    ev = demo.run("evaluate", {"calls": calls / "calls", "genes": genes / "genes", "truth.gff3": sim / "sim/truth.gff3",
                               "truth_genes.gff3": sim / "sim/truth_genes.gff3", "genome.fa.fai": fai}, {}, eval_sh)
    assert (ev / "evaluation_genes.tsv").read_text().strip()
    demo.run("report", {"plan.json": plan / "plan/plan.json", "run/predictions": pred, "run/calls": calls / "calls",
                        "run/tracks": tracks / "tracks", "run/genes": genes / "genes", "evaluation.tsv": ev / "evaluation.tsv",
                        "evaluation_genes.tsv": ev / "evaluation_genes.tsv", "truth_genes.gff3": sim / "sim/truth_genes.gff3"},
             {}, report_sh)
    # the pipeline's own glue on these real outputs (subworkflows/local/utils_genoseg):
    # chunk files -> predict inputs, weights checksum (predict's cache key), genes on/off
    utils = "subworkflows/local/utils_genoseg/main.nf"
    plan_files = sorted(str(p) for p in (plan / "plan/chunks").iterdir())
    glue = {"file": utils}
    answer = eval_config([
        {"id": "on", "profiles": ["test"], "params": {"outdir": "/r"}, "calls": [
            {**glue, "function": "chunkInputs", "args": [{"id": "segment_nt"}, {"paths": plan_files}]},
            {**glue, "function": "weightsChecksum", "args": [{"path": str(model)}]},
            {**glue, "function": "decodesGenes", "args": ["$params", {"path": str(pred)}]},
            {**glue, "function": "isConverted", "args": [{"path": str(model)}]}]},
        {"id": "off", "profiles": ["test"], "params": {"outdir": "/r", "genes": False}, "calls": [
            {**glue, "function": "decodesGenes", "args": ["$params", {"path": str(pred)}]}]},
    ], demo.tmp)
    inputs, checksum, genes_on, converted = (c.get("value", c) for c in answer["on"]["calls"])
    assert [i[0]["chunk"] for i in inputs] == [c.stem for c in chunks]
    for (meta, json_f, seq_f, index), chunk in zip(inputs, chunks):
        assert Path(json_f) == chunk and Path(seq_f) == chunk.with_suffix(".fa.gz")
        assert sorted(Path(i).name for i in index) == sorted(p.name for p in stage_index(chunk))
    assert checksum == hashlib.sha256((model / "convert.json").read_bytes()).hexdigest()
    assert genes_on is True and answer["off"]["calls"][0]["value"] is False
    assert converted is True
    # published layout, then the snapshot the pipeline test compares against
    out = demo.tmp / "published/segment_nt"
    out.mkdir(parents=True)
    for name, src in (("predictions", pred), ("calls", calls / "calls"), ("genes", genes / "genes")):
        (out / name).symlink_to(src)
    content = output_snapshot(out)
    if os.environ.get("GENOSEG_UPDATE_SNAPSHOT"):
        snap = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
        snap[PIPELINE_TEST] = {"content": content, "meta": {"nf-test": "0.9.2", "nextflow": "24.10.0"},
                               "timestamp": "written by tests/test_nextflow.py (GENOSEG_UPDATE_SNAPSHOT=1)"}
        SNAPSHOT.write_text(json.dumps(snap, indent=4) + "\n")
    expected = json.loads(SNAPSHOT.read_text())[PIPELINE_TEST]["content"]
    assert content == expected, ("the -profile test outputs changed: if that is intended, rerun this test with "
                                 "GENOSEG_UPDATE_SNAPSHOT=1 to update tests/main.nf.test.snap")
    assert PIPELINE_TEST in (ROOT / "tests/main.nf.test").read_text()


def test_fetch_model_module_against_a_local_hub(demo):
    from fakehub import FakeHub
    from test_fetch_model import COMMIT, NT_FILES
    with FakeHub() as fake:
        fake.add("InstaDeepAI/segment_nt", NT_FILES, COMMIT, refs=("abc123",))
        demo.env["HF_TOKEN"] = ""
        demo.env["HF_HOME"] = str(demo.tmp / "hf_home")  # the Hugging Face cache of this test only
        w = demo.run("fetch_model", {}, {"meta.backbone": "segment_nt", "meta.repo": "InstaDeepAI/segment_nt",
                                         "meta.revision": "abc123", "args": f"--endpoint {fake.endpoint}"})
    fetched = w / "segment_nt/abc123"
    # converted once, in this step: what predict tasks stage holds no pickle, and
    # RESOLVE_MODEL hands it to them as it is (isConverted): never converted a second time
    assert (fetched / "jax_model/pytree_ckpt.safetensors").is_file()
    assert not list(fetched.rglob("*.joblib"))
    assert json.loads((fetched / "fetch.json").read_text())["commit"] == COMMIT
    utils = {"file": "subworkflows/local/utils_genoseg/main.nf"}
    answer = eval_config([{"id": "fetched", "profiles": ["test"], "params": {"outdir": "/r"}, "calls": [
        {**utils, "function": "isConverted", "args": [{"path": str(fetched)}]},
        {**utils, "function": "isConverted", "args": [{"path": str(ROOT / "assets/demo_model")}]},
        {**utils, "function": "weightsChecksum", "args": [{"path": str(fetched)}]}]}], demo.tmp)
    converted, demo_converted, checksum = (c.get("value", c) for c in answer["fetched"]["calls"])
    assert converted is True and demo_converted is False
    assert checksum == hashlib.sha256((fetched / "convert.json").read_bytes()).hexdigest()
    record = json.loads((fetched / "convert.json").read_text())
    assert "jax_model/pytree_ckpt.safetensors" in record["files"]


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
    # params that are not command-line options (the genome/model maps) are listed in
    # validation.defaultIgnoreParams, as the nf-core template does, and not in the schema
    m = re.search(r"defaultIgnoreParams\s*=\s*\[([^\]]*)\]", (ROOT / "nextflow.config").read_text())
    ignored = set(re.findall(r"'([^']+)'", m.group(1))) if m else set()
    assert ignored <= defined and not (ignored & documented), (ignored, documented & ignored)
    assert defined - ignored == documented, (f"nextflow.config vs nextflow_schema.json: only in config {sorted(defined - ignored - documented)}, "
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


# --------------------------------------------------------------------------- 5. configuration, evaluated
#
# tests/nextflow/ConfigEval.groovy evaluates nextflow.config (includes, profiles in either
# order, withLabel/withName selectors, dynamic directives over task.attempt/exitStatus/
# previousTrace, resourceLimits, retries) with the real Groovy 4 and resolves what each
# task would get. All scenarios run in one JVM (module-scoped fixture).

WF_DIRS = ("workflows", "subworkflows/local")


def groovy_classpath() -> str | None:
    jar = groovy_jar()
    if jar is None:
        return None
    parts = [jar] + [jar.with_name(jar.name.replace("groovy-", f"groovy-{m}-")) for m in ("json", "dateutil")]
    return os.pathsep.join(map(str, parts)) if all(p.is_file() for p in parts) else None


def eval_config(runs: list[dict], tmp: Path, config: Path = ROOT / "nextflow.config") -> dict:
    java, cp = shutil.which("java"), groovy_classpath()
    if java is None or cp is None:
        pytest.skip("java or Groovy jars missing (make tools/groovy)")
    request = tmp / "config_request.json"
    request.write_text(json.dumps({"config": str(config), "runs": runs}))
    r = subprocess.run([java, "-XX:TieredStopAtLevel=1", "-cp", cp, "groovy.ui.GroovyMain",
                        str(ROOT / "tests/nextflow/ConfigEval.groovy"), str(request)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _callers() -> dict[str, list[str]]:
    """Process or workflow name -> the (sub)workflows that call it."""
    parent: dict[str, list[str]] = {}
    for d in WF_DIRS:
        for f in sorted((ROOT / d).rglob("*.nf")):
            text = f.read_text()
            m = re.search(r"^workflow\s+(\w+)", text, re.M)
            if not m:
                continue
            for inc in re.findall(r"^include\s*\{([^}]*)\}", text, re.M):
                for name in re.split(r"\s*;\s*", inc.strip()):
                    alias = name.split(" as ")[-1].strip()
                    if re.fullmatch(r"[A-Z][A-Z0-9_]*", alias):
                        parent.setdefault(alias, []).append(m.group(1))
    return parent


def fqn(process: str, backbone: str = "segment_nt") -> str:
    """Fully qualified process name as Nextflow forms it, inside the backbone's workflow."""
    parent, chain = _callers(), [process]
    while chain[0] in parent:
        options = parent[chain[0]]
        chain.insert(0, backbone.upper() if backbone.upper() in options else options[0])
    return ":".join(chain)


def module_inputs(path: Path) -> list[str]:
    """Names a module's script sees for its inputs: val(x), path(x[, stageAs: ...])."""
    return re.findall(r"\b(?:val|path|env)\(\s*(\w+)", section(path.read_text(), "input", ("output",)))


def module_task(module: str, exits=(0,), backbone="segment_nt", render_inputs=None, meta_extra=None, **extra) -> dict:
    """A task of a module as the harness takes it: name, fully qualified name, labels,
    inputs and its declared outputs (globs filled in) plus versions.yml. With
    `render_inputs` ({input name: staged name(s)}; missing inputs get placeholder names)
    the harness also renders the task's script as Nextflow would."""
    path = ROOT / "modules/local" / module / "main.nf"
    text = path.read_text()
    name = process_name(path)
    meta = {"id": backbone, "backbone": backbone, "chunk": "chunk_00000", "revision": "main", "repo": f"InstaDeepAI/{backbone}",
            **(meta_extra or {})}
    if render_inputs is not None:
        names = {n: dummy(n) for n in module_inputs(path) if n != "meta"}
        extra["render"] = {"module": str(path.relative_to(ROOT)), "inputs": {**names, **render_inputs, "meta": meta}}
    values = {"meta.backbone": backbone, "meta.chunk": "chunk_00000", "meta.revision": "main", "prefix": "chunk_00000",
              "meta.id": backbone}
    outputs = [render(o, values).replace("*", "exon") for o in module_outputs(path)]
    return {"name": name, "fqn": fqn(name, backbone), "labels": re.findall(r"^\s*label\s+'([^']+)'", text, re.M),
            "inputs": {"meta": meta}, "exits": list(exits), "outputs": outputs, **extra}


GPU_MODULE = "predict"
CPU_MODULES = [m.parent.name for m in MODULES if m.parent.name != GPU_MODULE]


def _scenarios(workdir: Path) -> list[dict]:
    out = "/results"
    wf = {"workDir": "/scratch/work"}
    all_tasks = [module_task(m) for m in [m.parent.name for m in MODULES]]
    runs = []
    for order in ("cli", "declared"):
        for profiles in (["slurm", "gpu", "singularity"], ["gpu", "singularity", "slurm"]):
            runs.append({"id": f"slurm_gpu/{order}/{','.join(profiles)}", "order": order, "profiles": profiles,
                         "params": {"outdir": out, "cluster_options": "--account=lab --qos=high"},
                         "workflow": {**wf, "containerEngine": "singularity"},
                         "tasks": [module_task(GPU_MODULE, exits=(75, 75, 0)),
                                   module_task(GPU_MODULE, exits=(137, 0)),
                                   module_task(GPU_MODULE, exits=(75, 137, 75, 0)),
                                   *[module_task(m) for m in CPU_MODULES]]})
    runs += [
        {"id": "batch_per_backbone", "profiles": ["gpu"], "params": {"outdir": out}, "workflow": wf,
         "tasks": [module_task(GPU_MODULE, backbone=b) for b in ("segment_nt", "segment_enformer", "segment_borzoi")]},
        {"id": "batch_param", "profiles": ["gpu"], "params": {"outdir": out, "batch_size": 6}, "workflow": wf,
         "tasks": [module_task(GPU_MODULE, backbone="segment_borzoi", exits=(75, 75, 0))]},
        # every optional parameter that becomes a genoseg flag (task sizing options are
        # alternatives: one per run)
        *[{"id": f"flags/{i}", "profiles": ["gpu"], "workflow": wf,
           "tasks": [module_task(m, render_inputs={}) for m in [m.parent.name for m in MODULES]],
           "params": {"outdir": out, **p}} for i, p in enumerate([
               {"chunk_seconds": 120.5, "seconds_per_window": 0.04, "window_length": 12288, "contigs": "chr1,chr2",
                "min_contig_length": 1000, "reverse_complement": True, "compute_dtype": "bfloat16",
                "call_args": "--threshold exon=0.6:0.4 --min-length exon=30", "genes_args": "--min-cds-length 150",
                "jax_cache_dir": "/shared/xla"},
               {"target_chunks": 100, "contig_regex": "^chr[0-9XY]+$", "use_gpu": False},
               {"windows_per_chunk": 64},
               {"contigs": "chr1,it's; touch /tmp/genoseg-pwned", "contig_regex": "^chr(1|2)$ $(id)'",
                "jax_cache_dir": "/shared/my xla's cache", "hf_endpoint": "https://hub.example/o'k"}])],
        {"id": "slurm_cpu", "profiles": ["slurm"], "params": {"outdir": out, "cluster_options": "--account=lab"},
         "workflow": wf, "tasks": [module_task(GPU_MODULE)]},
        {"id": "local_docker_gpu", "profiles": ["docker", "gpu"], "params": {"outdir": out},
         "workflow": {**wf, "containerEngine": "docker"}, "tasks": [module_task(GPU_MODULE), module_task("call")]},
        {"id": "local_apptainer_gpu", "profiles": ["apptainer", "gpu"], "params": {"outdir": out},
         "workflow": {**wf, "containerEngine": "apptainer"}, "tasks": [module_task(GPU_MODULE)]},
        {"id": "conda_gpu", "profiles": ["conda", "gpu"], "params": {"outdir": out},
         "workflow": wf, "tasks": [module_task(GPU_MODULE), module_task("call")]},
        {"id": "awsbatch_gpu_no_queue", "profiles": ["awsbatch", "gpu"],
         "params": {"outdir": "s3://bucket/out", "awsbatch_queue": "cpu-queue"},
         "workflow": {"workDir": "s3://bucket/work", "containerEngine": "docker", "profile": "awsbatch,gpu"},
         "calls": [{"file": "subworkflows/local/utils_genoseg/main.nf", "function": "checkComputeOptions",
                    "args": ["$params", "awsbatch,gpu"]}]},
        {"id": "awsbatch_gpu", "profiles": ["awsbatch", "gpu"],
         "params": {"outdir": "s3://bucket/out", "awsbatch_queue": "cpu-queue", "gpu_queue": "gpu-queue"},
         "workflow": {"workDir": "s3://bucket/work", "containerEngine": "docker"},
         "tasks": [module_task(GPU_MODULE), module_task("call")],
         "calls": [{"file": "subworkflows/local/utils_genoseg/main.nf", "function": "checkComputeOptions",
                    "args": ["$params", "awsbatch,gpu"]}]},
        {"id": "google_gpu", "profiles": ["google", "gpu"], "params": {"outdir": "gs://bucket/out", "google_project": "p"},
         "workflow": {"workDir": "gs://bucket/work", "containerEngine": "docker"},
         "tasks": [module_task(GPU_MODULE, exits=(50001, 0)), module_task("call", exits=(50001, 0))],
         "calls": [{"file": "subworkflows/local/utils_genoseg/main.nf", "function": "checkComputeOptions",
                    "args": ["$params", "google,gpu"]}]},
        {"id": "default", "profiles": [], "params": {"outdir": out}, "workflow": wf,
         "tasks": [dict(t, exits=[137, 137, 137, 137, 0]) for t in all_tasks]},
        {"id": "test", "profiles": ["test"], "params": {"outdir": out}, "workflow": {"workDir": str(workdir)},
         "tasks": [dict(t, exits=[137, 137, 137, 137, 0]) for t in all_tasks],
         "calls": [{"file": "subworkflows/local/utils_genoseg/main.nf", "function": "jaxCacheDir",
                    "args": ["$params", "$workDir"]}]},
    ]
    return runs


class Evaluated(dict):
    """Harness answer by run id; a run the harness could not evaluate fails its test."""

    def __getitem__(self, rid):
        run = super().__getitem__(rid)
        assert "failure" not in run, f"{rid}: {run['failure']}"
        return run


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("config_eval")
    evaluated = Evaluated(eval_config(_scenarios(tmp / "work"), tmp))
    evaluated.workdir = tmp / "work"
    return evaluated


def attempts_of(run: dict, name: str) -> list[list[dict]]:
    """Every task of `run` with process name `name`: its attempts, in request order."""
    return [t for t in run["tasks"] if t[0]["_process"] == name]


def predict(run: dict, nth: int = 0) -> list[dict]:
    return attempts_of(run, "GENOSEG_PREDICT")[nth]


def test_slurm_gpu_tasks_request_the_gpu_with_the_users_cluster_options(configs):
    """-profile slurm,gpu: Slurm ignores `accelerator`, so the GPU label itself asks for the
    GPU (--gres) next to the user's --cluster_options; CPU tasks keep only the user's."""
    runs = {k: configs[k] for k in configs if k.startswith("slurm_gpu/")}
    assert len(runs) == 4  # both profile orders, both parsers' profile semantics
    for rid, run in runs.items():
        first = predict(run)[0]
        opts = first["clusterOptions"]
        assert "--account=lab --qos=high" in opts, (rid, opts)
        assert re.search(r"--gres=gpu:1\b|--gpus(-per-task)?=1\b", opts), (rid, opts)
        assert first["executor"] == "slurm" and first["accelerator"] == {"request": 1}
        assert first["containerOptions"].startswith("--nv") and first["container"].endswith("-cuda")
        assert not first.get("beforeScript"), "Slurm assigns the GPU: no local GPU slot"
        cpu = [t for t in run["tasks"] if t[0]["_process"] != "GENOSEG_PREDICT"]
        assert len(cpu) == len(CPU_MODULES)
        for t in cpu:
            a = t[0]
            assert a.get("clusterOptions") == "--account=lab --qos=high", (rid, a["_process"], a.get("clusterOptions"))
            assert not a.get("accelerator") and "--nv" not in (a.get("containerOptions") or "")
            assert not a["container"].endswith("-cuda")
    # without the gpu profile no task asks Slurm for a GPU
    cpu_only = predict(configs["slurm_cpu"])[0]
    assert cpu_only["clusterOptions"] == "--account=lab" and not cpu_only.get("accelerator")


def test_gpu_out_of_memory_retries_halve_the_batch_and_keep_memory_and_time(configs):
    """exit 75 (genoseg predict: out of accelerator memory) -> retry with half the batch and
    the same memory/time; a task killed by a signal (137) -> retry with twice the memory."""
    run = configs["slurm_gpu/cli/slurm,gpu,singularity"]
    oom = predict(run, 0)
    assert [a["action"] for a in oom] == ["retry", "retry", "done"]
    assert [a["ext"]["batch_size"] for a in oom] == [4, 2, 1]
    assert len({a["memory"] for a in oom}) == 1 and len({a["time"] for a in oom}) == 1
    killed = predict(run, 1)
    assert killed[0]["action"] == "retry"
    assert killed[1]["memory"] == 2 * killed[0]["memory"] and killed[1]["time"] == 2 * killed[0]["time"]
    mixed = predict(run, 2)   # 75, 137, 75, 0: only the kill doubles memory
    mem = [a["memory"] for a in mixed]
    assert mem == [mem[0], mem[0], 2 * mem[0], 2 * mem[0]]
    assert [a["ext"]["batch_size"] for a in mixed] == [4, 2, 1, 1]
    assert [a["action"] for a in mixed] == ["retry", "retry", "retry", "done"]
    # starting batch per backbone, or --batch_size, halved on each retry
    assert [t[0]["ext"]["batch_size"] for t in configs["batch_per_backbone"]["tasks"]] == [4, 8, 2]
    assert [a["ext"]["batch_size"] for a in predict(configs["batch_param"])] == [6, 3, 1]
    # the module passes exactly this batch size to genoseg predict
    assert "--batch-size ${batch_size}" in module_script(ROOT / "modules/local/predict/main.nf")
    assert "task.ext.batch_size" in (ROOT / "modules/local/predict/main.nf").read_text()


def test_awsbatch_gpu_without_a_gpu_queue_stops_at_start(configs):
    refused = configs["awsbatch_gpu_no_queue"]
    assert refused["params"]["use_gpu"] is True
    err = refused["calls"][0].get("error", "")
    assert "--gpu_queue" in err and "awsbatch" in err, refused["calls"]
    main_nf = (ROOT / "main.nf").read_text()
    assert re.search(r"checkComputeOptions\(params,\s*workflow\.profile\)", main_nf)
    assert main_nf.index("checkComputeOptions(") < main_nf.index("PREPARE_GENOME(")
    ok = configs["awsbatch_gpu"]
    assert "error" not in ok["calls"][0], ok["calls"]
    gpu, cpu = predict(ok)[0], attempts_of(ok, "GENOSEG_CALL")[0][0]
    assert gpu["queue"] == "gpu-queue" and gpu["accelerator"] == {"request": 1} and gpu["executor"] == "awsbatch"
    assert cpu["queue"] == "cpu-queue" and not cpu.get("accelerator")


def test_google_batch_gpu_type_machine_type_and_spot_retries(configs):
    run = configs["google_gpu"]
    assert "error" not in run["calls"][0], run["calls"]
    cfg = run["config"]
    assert cfg["google.batch.spot"] is True and cfg["google.batch.maxSpotAttempts"] >= 1
    p = predict(run)
    assert p[0]["accelerator"] == {"request": 1, "type": "nvidia-l4"}
    assert p[0]["machineType"] == "g2-standard-8"
    assert p[0]["containerOptions"].startswith("--gpus all")
    # a spot VM reclaimed after Batch's own attempts (exit 50001): Nextflow retries, with
    # the same memory (still fits the machine type)
    assert p[0]["action"] == "retry" and p[1]["memory"] == p[0]["memory"]
    call = attempts_of(run, "GENOSEG_CALL")[0]
    assert call[0]["action"] == "retry" and not call[0].get("machineType") and not call[0].get("accelerator")
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    props = {k: v for d in schema["$defs"].values() for k, v in d["properties"].items()}
    assert props["google_gpu_type"]["default"] == "nvidia-l4" and props["google_machine_type"]["default"] == "g2-standard-8"


def test_local_gpu_tasks_get_one_gpu_each_inside_their_container(configs):
    """Local executor: bin/genoseg_gpu_slot.sh is sourced before each GPU task (one GPU
    per task), and the container engines let CUDA_VISIBLE_DEVICES through."""
    for rid, engine_flag in (("local_docker_gpu", "--gpus all"), ("local_apptainer_gpu", "--nv")):
        run = configs[rid]
        p = predict(run)[0]
        assert p["containerOptions"].startswith(engine_flag)
        assert p["beforeScript"] == f". '{ROOT}/bin/genoseg_gpu_slot.sh'"
        engine = rid.split("_")[1]
        assert "CUDA_VISIBLE_DEVICES" in run["config"][f"{engine}.envWhitelist"]
        assert p["accelerator"] == {"request": 1}
    call = attempts_of(configs["local_docker_gpu"], "GENOSEG_CALL")[0][0]
    assert not call.get("beforeScript") and not call.get("containerOptions") and not call.get("accelerator")
    # singularity's whitelist is set as well (its launch line starts from an empty environment)
    sing = configs["slurm_gpu/cli/slurm,gpu,singularity"]["config"]
    assert "CUDA_VISIBLE_DEVICES" in sing["singularity.envWhitelist"]


def test_conda_gpu_tasks_get_the_cuda_environment(configs):
    run = configs["conda_gpu"]
    gpu_env, cpu_env = predict(run)[0]["conda"], attempts_of(run, "GENOSEG_CALL")[0][0]["conda"]
    assert gpu_env.endswith("environment-gpu.yml") and cpu_env.endswith("environment.yml")
    gpu_yml = (ROOT / "environment-gpu.yml").read_text()
    assert re.search(r"jax\[cuda12\]", gpu_yml) and not re.search(r"jax\[cuda", (ROOT / "environment.yml").read_text())


def test_conda_environments_have_every_dependency():
    """environment.yml / environment-gpu.yml install what pyproject.toml requires."""
    import tomllib
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    for env in ("environment.yml", "environment-gpu.yml"):
        listed = {re.split(r"[<>=!~\[ ]", l.strip("- ").strip(), maxsplit=1)[0].lower().replace("_", "-")
                  for l in (ROOT / env).read_text().splitlines() if re.match(r"^\s+- ", l)}
        assert names <= listed, f"{env} lacks {sorted(names - listed)}"


def test_resource_limits_cap_every_label(configs):
    for rid in ("default", "test"):
        run = configs[rid]
        limits = {k.rsplit(".", 1)[1]: v for k, v in run["config"].items() if k.startswith("process.resourceLimits.")}
        assert set(limits) >= {"cpus", "memory", "time"}
        for t in run["tasks"]:
            for a in t:
                assert a["cpus"] <= limits["cpus"] and a["memory"] <= limits["memory"] and a["time"] <= limits["time"], (rid, a["_process"], a["attempt"])
    # the labels are really scaled: a retried kill gets more memory somewhere below the cap
    assert any(t[1]["memory"] > t[0]["memory"] for t in configs["default"]["tasks"] if len(t) > 1)


def test_published_outputs_hold_no_versions_yml(configs):
    run = configs["default"]
    published = {}
    for t in run["tasks"]:
        a = t[0]
        assert "versions.yml" in a["published"], a["_process"]
        assert a["published"]["versions.yml"] == [], f"{a['_process']} publishes versions.yml to {a['published']['versions.yml']}"
        for out, dests in a["published"].items():
            published.update({d: (a["_process"], out) for d in dests})
    wanted = {"/results/segment_nt/plan.json", "/results/segment_nt/predictions", "/results/segment_nt/calls",
              "/results/segment_nt/tracks", "/results/segment_nt/genes", "/results/segment_nt/report.html",
              "/results/segment_nt/evaluation.tsv"}
    assert wanted <= set(published), sorted(published)
    assert not any(d.endswith(".parquet") for d in published), "predict chunks are intermediate"
    main_nf = (ROOT / "main.nf").read_text()
    assert "pipeline_info" in main_nf and "versions" in main_nf


GPU_SLOT_TASK = """set -eu
. "$1"
echo "${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N) start" >> "$2"
sleep "$3"
echo "${CUDA_VISIBLE_DEVICES:-none} $(date +%s.%N) end" >> "$2"
"""


def _slot_tasks(tmp_path, n, env_extra=None, gpus="0\n1", hold=1.5):
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    if gpus is not None:
        (fake / "nvidia-smi").write_text(f"#!/bin/sh\nprintf '{gpus}\\n'\n")
        (fake / "nvidia-smi").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(PATH=f"{fake}:/usr/bin:/bin", GENOSEG_GPU_LOCK_DIR=str(tmp_path / "locks"), **(env_extra or {}))
    log = tmp_path / "log.txt"
    procs = [subprocess.Popen(["bash", "-c", GPU_SLOT_TASK, "task", str(ROOT / "bin/genoseg_gpu_slot.sh"), str(log), str(hold)],
                              env=env, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    runs = {}
    for i, line in enumerate(log.read_text().split("\n")):
        if line:
            dev, t, what = line.split()
            runs.setdefault(dev, []).append((float(t), what))
    return runs, errs


def test_gpu_slot_gives_each_concurrent_task_its_own_gpu(tmp_path):
    """bin/genoseg_gpu_slot.sh, as the local executor's GPU tasks source it: three tasks on
    two GPUs run on distinct devices, never two at once on one device; the third waits."""
    if shutil.which("flock") is None:
        pytest.skip("flock (util-linux) not installed")
    runs, errs = _slot_tasks(tmp_path, 3)
    assert set(runs) == {"0", "1"}, runs
    for dev, events in runs.items():
        depth = 0
        for _, what in sorted(events):
            depth += 1 if what == "start" else -1
            assert depth <= 1, f"two tasks at once on GPU {dev}: {events}"
    assert sum(len(e) for e in runs.values()) == 6
    assert sum("task uses GPU" in e for e in errs) == 3


def test_gpu_slot_respects_an_existing_selection_and_no_gpu(tmp_path):
    if shutil.which("flock") is None:
        pytest.skip("flock (util-linux) not installed")
    # Nextflow >= 26.10 (or the user) already chose the devices: only those are used
    (tmp_path / "a").mkdir()
    runs, _ = _slot_tasks(tmp_path / "a", 2, {"CUDA_VISIBLE_DEVICES": "2,3"}, hold=0.5)
    assert set(runs) == {"2", "3"}
    # no GPU anywhere: nothing exported, a clear note, the task itself decides (predict exits 69)
    (tmp_path / "b").mkdir()
    runs, errs = _slot_tasks(tmp_path / "b", 1, gpus=None, hold=0)
    assert set(runs) == {"none"} and "no GPU" in errs[0]


def test_schema_passes_the_nf_core_schema_lint_rules(configs):
    """The checks of `nf-core pipelines schema lint` (nf_core.pipelines.schema), with the
    harness in place of `nextflow config`: every schema parameter that is not ignored has a
    config default of its type and the same default; $id/title follow manifest.name; the
    genome/model maps are ignored (validation.defaultIgnoreParams), not described."""
    run = configs["default"]
    cfg, params = run["config"], run["params"]
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and "defs" not in schema
    name = cfg["manifest.name"]
    assert schema["$id"] == f"https://raw.githubusercontent.com/{name}/main/nextflow_schema.json"
    assert schema["title"] == f"{name} pipeline parameters"
    assert schema["description"] == cfg["manifest.description"]
    ignored = set(cfg["validation.defaultIgnoreParams"]) | {cfg.get("validation.help.shortParameter", "help"),
                                                           cfg["validation.help.fullParameter"],
                                                           cfg["validation.help.showHiddenParameter"], "trace_report_suffix"}
    assert {"genomes", "models"} <= ignored
    seen = set()
    for group, d in schema["$defs"].items():
        assert {"$ref": f"#/$defs/{group}"} in schema["allOf"]
        for p, spec in d["properties"].items():
            assert p not in seen, f"duplicate parameter {p}"
            seen.add(p)
            if p in ignored:
                continue
            assert p in params, f"--{p}: Not in pipeline parameters. Check `nextflow.config`."
            value = params[p]
            if "default" in spec:
                if spec["type"] == "boolean":
                    assert str(value).lower() == str(spec["default"]).lower(), p
                else:
                    assert str(spec["default"]) == str(value), f"{p}: schema {spec['default']!r} vs config {value!r}"
            if value is None:
                continue
            t = spec["type"]
            if t == "boolean":
                assert isinstance(value, bool), p
            elif t == "integer":
                assert isinstance(value, int) and not isinstance(value, bool), p
            elif t == "string":
                assert isinstance(value, str) and value not in ("true", "false", ""), p
    for d in schema["$defs"].values():
        assert not any(v.get("type") == "object" for v in d["properties"].values()), "object params belong in defaultIgnoreParams"


def test_nf_tests_assert_the_version_value(genome):
    """The nf-test versions assertions accept a real versions.yml and reject one written
    where genoseg is missing (the key `genoseg:` is there either way)."""
    sim, _ = genome
    real = (sim / "versions.yml").read_text()
    missing = real.replace(re.search(r"genoseg: (.*)", real).group(1), "bash: line 1: genoseg: command not found")
    empty = re.sub(r"genoseg: .*", "genoseg: ", real)
    specs = sorted(ROOT.glob("modules/local/*/tests/main.nf.test")) + [ROOT / "tests/main.nf.test"]
    for spec in specs:
        text = spec.read_text()
        assert 'contains("genoseg:")' not in text, spec
        found = re.findall(r"versions.*?=~ /(.+?)/ }", text)
        assert found, f"{spec}: no versions value assertion"
        for pattern in found:
            rx = re.compile(pattern)
            assert rx.search(real) and not rx.search(missing) and not rx.search(empty), (spec, pattern)


def test_module_command_lines_with_every_configured_flag_parse(configs):
    """Each module's genoseg command line as the configuration renders it with every
    optional parameter set (script sections evaluated by the harness, not grepped) parses
    with the real CLI."""
    parser = build_parser()
    seen = set()
    for rid in [k for k in configs if k.startswith("flags/")]:
        for t in configs[rid]["tasks"]:
            a = t[0]
            for line in genoseg_lines(a["script"]):
                if line.startswith("genoseg --version"):
                    continue
                argv = shlex.split(line)[1:]
                try:
                    parser.parse_args(argv)
                except SystemExit as exc:
                    pytest.fail(f"{rid} {a['_process']}: `{line}` rejected by the CLI parser (exit {exc.code})")
                seen |= {w for w in argv if w.startswith("--")}
    for flag in ("--chunk-seconds", "--target-chunks", "--windows-per-chunk", "--seconds-per-window", "--stage-sequences",
                 "--device", "--jax-cache-dir", "--sequence", "--reverse-complement", "--threads", "--contig-regex",
                 "--genes", "--truth-genes", "--gene-evaluation"):
        assert flag in seen, flag


def _argv(text: str) -> list[str]:
    return shlex.split(text or "")


def test_jax_cache_dir_is_passed_to_predict_and_mounted_in_its_container(configs):
    for rid, opt in (("local_docker_gpu", "-v"), ("local_apptainer_gpu", "-B")):
        p = predict(configs[rid])[0]
        args = _argv(p["ext"]["args"])
        cache = args[args.index("--jax-cache-dir") + 1]
        assert cache == "/scratch/work/genoseg_jax_cache"
        mount = _argv(p["containerOptions"])
        assert mount[mount.index(opt) + 1] == (f"{cache}:{cache}" if opt == "-v" else cache)
    # object-store work directory: no shared file system, no cache unless one is named
    aws = predict(configs["awsbatch_gpu"])[0]
    assert "--jax-cache-dir" not in aws["ext"]["args"] and "-v" not in _argv(aws["containerOptions"])
    named = predict(configs["flags/0"])[0]
    assert _argv(named["ext"]["args"])[-2:] == ["--jax-cache-dir", "/shared/xla"]
    # the pipeline creates the same directory at start (main.nf -> jaxCacheDir)
    assert configs["test"]["calls"][0]["value"].endswith("/work/genoseg_jax_cache")


def test_parameters_reach_genoseg_as_data_not_shell(configs):
    """Contig names, a regular expression, paths and URLs are shell-quoted: the command
    line gives genoseg exactly the parameter's text (no injection, no word splitting)."""
    run = configs["flags/3"]
    params = run["params"]
    plan = _argv(attempts_of(run, "GENOSEG_PLAN")[0][0]["ext"]["args"])
    assert plan[plan.index("--contigs") + 1] == params["contigs"]
    assert plan[plan.index("--contig-regex") + 1] == params["contig_regex"]
    pred = predict(run)[0]
    args = _argv(pred["ext"]["args"])
    assert args[args.index("--jax-cache-dir") + 1] == params["jax_cache_dir"]
    fetch = _argv(attempts_of(run, "GENOSEG_FETCH_MODEL")[0][0]["ext"]["args"])
    assert fetch == ["--endpoint", params["hf_endpoint"]]
