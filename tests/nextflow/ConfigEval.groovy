// Evaluates the pipeline's Nextflow configuration the way Nextflow does, without Nextflow,
// and resolves the directives a task would get. Used by tests/test_nextflow.py.
//
//   java -cp groovy-4.x.jar:groovy-json-4.x.jar:groovy-dateutil-4.x.jar groovy.ui.GroovyMain \
//        tests/nextflow/ConfigEval.groovy REQUEST.json          (prints a JSON answer)
//
// What is emulated (Nextflow's config DSL, as in its strict "v2" config parser):
// - config files are Groovy: assignments `a.b = v`, blocks `a { ... }`, `includeConfig`
//   (relative to the including file), `params` (command-line params win over config
//   assignments), `profiles { name { ... } }` applied where the block stands, in the order
//   given on the command line ("cli", strict parser) or in the order they are declared
//   ("declared", legacy parser), `plugins { id '...' }`, `withLabel:`/`withName:` selectors
//   (rewritten from Groovy statement labels into selector blocks), memory/duration units
//   (`8.GB`, `4.h`);
// - per task: selector precedence (the process's own directives < withLabel < withName by
//   simple then fully qualified name; plain `process.*` settings only fill what is unset),
//   dynamic directives as closures over `task` (attempt, exitStatus, previousTrace,
//   executor, process), the process inputs (`meta`), `params`, `workflow`, `projectDir`;
//   `resourceLimits` capping cpus/memory/time; retries driven by `errorStrategy` and
//   `maxRetries` with the failed attempt's exit status and trace record.
// It also calls plain Groovy functions of a .nf file (e.g. parameter checks) with the
// resolved params, to see the error a run would stop with.
//
// Request: {"config": "nextflow.config", "runs": [{"id": ..., "profiles": [...],
//   "order": "cli"|"declared", "params": {...}, "workflow": {...},
//   "tasks": [{"name": "GENOSEG_PREDICT", "fqn": "A:B:GENOSEG_PREDICT", "labels": [...],
//              "directives": {...}, "inputs": {"meta": {...}}, "exits": [75, 0]}],
//   "calls": [{"file": "x.nf", "function": "f", "args": ["$params", "$workflow", 1]}]}]}
// Answer: {"<id>": {"config": {...flattened settings...}, "params": {...},
//   "tasks": [[{attempt, directives..., "exit": n, "action": "retry"|...}, ...]],
//   "calls": [{"value": ...} | {"error": "message"}]}}

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.nio.file.Path
import java.nio.file.Paths
import java.util.regex.Pattern
import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.ArgumentListExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.TupleExpression
import org.codehaus.groovy.ast.expr.VariableExpression
import org.codehaus.groovy.ast.stmt.BlockStatement
import org.codehaus.groovy.ast.stmt.ExpressionStatement
import org.codehaus.groovy.classgen.GeneratorContext
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.SourceUnit
import org.codehaus.groovy.control.customizers.CompilationCustomizer

// ------------------------------------------------------------------ units

// A memory (bytes) or duration (milliseconds) value, as Nextflow's MemoryUnit/Duration:
// from `8.GB`, `4.h`, '8 GB', '4h' or a plain number of the base unit.
class Amount implements Comparable<Amount> {
    static final Map<String, Map<String, Long>> UNITS = [
        memory: [B: 1L, KB: 1L << 10, MB: 1L << 20, GB: 1L << 30, TB: 1L << 40],
        time  : [ms: 1L, s: 1000L, m: 60_000L, min: 60_000L, h: 3_600_000L, d: 86_400_000L]]
    final String kind
    final long value

    Amount(String kind, long value) { this.kind = kind; this.value = value }

    static Amount of(String kind, Object v) {
        if (v == null) return null
        if (v instanceof Amount) return (Amount) v
        if (v instanceof Number) return new Amount(kind, ((Number) v).longValue())
        def m = (v.toString().trim() =~ /^([\d.]+)\s*([A-Za-z]+)$/)
        Long mult = m.matches() ? UNITS[kind][kind == 'memory' ? m.group(2).toUpperCase() : m.group(2)] : null
        if (mult == null) throw new IllegalArgumentException("Not a valid ${kind} value: '${v}'")
        return new Amount(kind, (long) (new BigDecimal(m.group(1)) * mult))
    }

    Amount multiply(Number n) { new Amount(kind, (long) (value * n)) }
    Amount div(Number n) { new Amount(kind, (long) (value / n)) }
    Amount plus(Amount o) { new Amount(kind, value + o.value) }
    int compareTo(Amount o) { Long.compare(value, o.value) }
    boolean equals(Object o) { o instanceof Amount && o.kind == kind && o.value == value }
    int hashCode() { Long.hashCode(value) }
    String toString() { "${value} (${kind})" }
}

// Nextflow's extensions used by the pipeline: memory and duration units on numbers, and
// the Path properties of its file helpers (name, text, exists()).
def installExtensions() {
    java.nio.file.Path.metaClass.getName = { -> delegate.fileName.toString() }
    java.nio.file.Path.metaClass.getText = { -> new String(java.nio.file.Files.readAllBytes(delegate), 'UTF-8') }
    java.nio.file.Path.metaClass.exists = { -> java.nio.file.Files.exists(delegate) }
    [Integer, Long].each { cls ->
        Amount.UNITS.each { kind, units ->
            units.each { unit, mult ->
                // 8.GB -> getGB, 4.h -> getH, 30.min -> getMin
                cls.metaClass."get${unit[0].toUpperCase()}${unit.substring(1)}" = { -> new Amount(kind, (delegate as long) * mult) }
            }
        }
    }
}

// ------------------------------------------------------------------ config DSL

// `withLabel:foo { ... }` is a Groovy statement label in front of the call `foo({ ... })`;
// Nextflow rewrites it into a selector block. Same here: withLabel('foo', { ... }).
class SelectorLabels extends CompilationCustomizer {
    SelectorLabels() { super(CompilePhase.CONVERSION) }

    void call(SourceUnit source, GeneratorContext context, ClassNode classNode) {
        def visitor = new CodeVisitorSupport() {
            @Override
            void visitBlockStatement(BlockStatement block) {
                for (stmt in block.statements) {
                    def labels = stmt.statementLabels ?: []
                    def kind = labels.find { it in ['withLabel', 'withName'] }
                    if (kind && stmt instanceof ExpressionStatement && stmt.expression instanceof MethodCallExpression) {
                        def call = (MethodCallExpression) stmt.expression
                        def args = call.arguments instanceof TupleExpression ? ((TupleExpression) call.arguments).expressions : [call.arguments]
                        if (call.implicitThis && args.size() == 1 && args[0] instanceof ClosureExpression) {
                            stmt.expression = new MethodCallExpression(VariableExpression.THIS_EXPRESSION, kind,
                                    new ArgumentListExpression(new ConstantExpression(call.methodAsString), args[0]))
                        }
                    }
                }
                super.visitBlockStatement(block)
            }
        }
        source.AST.statementBlock.visit(visitor)
        classNode.methods.each { it.code?.visit(visitor) }
    }
}

class ConfigDsl {
    Map target = [params: [:]]
    Map cliParams = [:]
    List<String> profiles = []
    String order = 'cli'
    Map constants = [:]
    boolean frozen = false
    List<String> declaredProfiles = []
    int fileCount = 0

    Object paramsOrConstant(String name) {
        if (name == 'params') return target.params
        if (constants.containsKey(name)) return constants[name]
        return NOT_FOUND
    }
    static final Object NOT_FOUND = new Object()

    Map navigate(List<String> names) {
        Map ctx = target
        for (n in names) {
            if (!(ctx[n] instanceof Map)) ctx[n] = [:]
            ctx = (Map) ctx[n]
        }
        return ctx
    }

    void assign(List<String> names, Object value) {
        if (names.size() == 2 && names[0] == 'params' && cliParams.containsKey(names[1]))
            value = cliParams[names[1]]
        navigate(names.init()).put(names.last(), value)
    }

    void block(List<String> scope, Closure body, Path file) {
        if (scope == ['profiles']) {
            def blocks = new LinkedHashMap<String, Closure>()
            run(new ProfilesScope(blocks: blocks), body)
            declaredProfiles.addAll(blocks.keySet())
            def names = order == 'cli' ? profiles : blocks.keySet().findAll { it in profiles }
            for (name in names) {
                if (blocks[name]) run(new Scope(dsl: this, path: [], file: file), blocks[name])
            }
            return
        }
        if (scope == ['plugins']) {
            def ids = []
            run(new PluginsScope(ids: ids), body)
            target.plugins = ids
            return
        }
        run(new Scope(dsl: this, path: scope, file: file), body)
    }

    static void run(Object delegate, Closure body) {
        def cl = (Closure) body.clone()
        cl.resolveStrategy = Closure.DELEGATE_FIRST
        cl.delegate = delegate
        cl.call()
    }

    void includeConfig(List<String> scope, Path from, String file) {
        Path path = Paths.get(file)
        if (!path.isAbsolute()) path = from.resolveSibling(file)
        if (!path.toFile().exists()) throw new FileNotFoundException("Config file does not exist: ${path}")
        parseFile(path, scope)
    }

    void parseFile(Path path, List<String> scope = []) {
        def cc = new CompilerConfiguration()
        cc.scriptBaseClass = ConfigScript.name
        cc.addCompilationCustomizers(new SelectorLabels())
        def shell = new GroovyShell(ConfigDsl.classLoader, new Binding(), cc)
        // a neutral class name: Groovy names a script's class after its file, and a class
        // called `nextflow` would shadow the `nextflow.enable...` config options
        def script = (ConfigScript) shell.parse(path.toFile().text, "ConfigFile${++fileCount}.groovy")
        script.dsl = this
        script.scope = scope
        script.file = path
        script.run()
    }
}

// Top level of a config file (scope [] or the scope of an includeConfig inside a block).
abstract class ConfigScript extends Script {
    ConfigDsl dsl
    List<String> scope
    Path file

    def getProperty(String name) {
        if (name in ['dsl', 'scope', 'file', 'binding', 'metaClass', 'class']) return super.getProperty(name)
        return new Scope(dsl: dsl, path: scope, file: file).getProperty(name)
    }

    void setProperty(String name, Object value) {
        if (name in ['dsl', 'scope', 'file']) { super.setProperty(name, value); return }
        dsl.assign(scope + [name], value)
    }

    def includeConfig(String f) { here().includeConfig(f) }

    def methodMissing(String name, Object args) { here().methodMissing(name, args) }

    private Scope here() { new Scope(dsl: dsl, path: scope, file: file) }
}

// A config block: assignments and nested blocks are relative to `path`.
class Scope {
    ConfigDsl dsl
    List<String> path
    Path file

    def getProperty(String name) {
        def v = dsl.paramsOrConstant(name)
        if (!v.is(ConfigDsl.NOT_FOUND)) return v
        if (dsl.frozen) throw new MissingPropertyException(name, Scope)
        return new OptionPath(dsl: dsl, path: path + [name])
    }

    void setProperty(String name, Object value) {
        if (dsl.frozen) throw new MissingPropertyException(name, Scope)
        dsl.assign(path + [name], value)
    }

    def includeConfig(String f) {
        dsl.includeConfig(path, file ?: Paths.get('.'), f)
        return null
    }

    def withLabel(String label, Closure body) { addSelector("withLabel:${label}", body) }

    def withName(String pattern, Closure body) { addSelector("withName:${pattern}", body) }

    private def addSelector(String key, Closure body) {
        if (path.size() != 1 || path[0] != 'process')
            throw new IllegalStateException("Config selectors are only allowed in the `process` scope (offending scope: `${path.join('.')}`)")
        dsl.block(path + [key], body, file)
        return null
    }

    def methodMissing(String name, Object args) {
        def list = args instanceof Object[] ? (args as List) : [args]
        if (list.size() == 1 && list[0] instanceof Closure) {
            dsl.block(path + [name], (Closure) list[0], file)
            return null
        }
        throw new MissingMethodException(name, Scope, list as Object[])
    }
}

// The left-hand side of a dotted assignment, e.g. `process.executor` in `process.executor = 'x'`.
class OptionPath {
    ConfigDsl dsl
    List<String> path
    def getProperty(String name) { new OptionPath(dsl: dsl, path: path + [name]) }
    void setProperty(String name, Object value) { dsl.assign(path + [name], value) }
    String toString() { throw new IllegalStateException("Config option `${path.join('.')}` read as a value: only params and constants can be read in a config file") }
}

class ProfilesScope {
    Map<String, Closure> blocks
    def methodMissing(String name, Object args) {
        def list = args instanceof Object[] ? (args as List) : [args]
        if (list.size() == 1 && list[0] instanceof Closure) { blocks[name] = (Closure) list[0]; return null }
        throw new IllegalStateException("Only profile blocks are allowed in the `profiles` scope (found `${name}`)")
    }
    void setProperty(String name, Object value) {
        throw new IllegalStateException("Only profile blocks are allowed in the `profiles` scope (found `${name} = ...`)")
    }
}

class PluginsScope {
    List ids
    def id(String value) { ids << value; return null }
}

// ------------------------------------------------------------------ module scripts

// Keeps only the `script:` section of a process body (from the statement labelled
// `script` up to the `stub:`/`shell:`/`exec:` section), as Nextflow does when it builds a
// task's command: running the process closure then returns the script's GString.
class ScriptSection extends CompilationCustomizer {
    ScriptSection() { super(CompilePhase.CONVERSION) }

    void call(SourceUnit source, GeneratorContext context, ClassNode classNode) {
        def visitor = new CodeVisitorSupport() {
            @Override
            void visitClosureExpression(ClosureExpression closure) {
                def block = closure.code instanceof BlockStatement ? (BlockStatement) closure.code : null
                def labelled = { stmt, names -> (stmt.statementLabels ?: []).any { it in names } }
                int from = block ? block.statements.findIndexOf { labelled(it, ['script']) } : -1
                if (from >= 0) {
                    int to = block.statements.findIndexOf(from + 1) { labelled(it, ['stub', 'shell', 'exec']) }
                    def keep = new ArrayList(block.statements.subList(from, to < 0 ? block.statements.size() : to))
                    block.statements.clear()
                    block.statements.addAll(keep)
                }
                super.visitClosureExpression(closure)
            }
        }
        source.AST.statementBlock.visit(visitor)
        classNode.methods.each { it.code?.visit(visitor) }
    }
}

// `process NAME { ... }` in a module file: captures the (script-only) process body.
abstract class ModuleScript extends Script {
    Closure body
    def methodMissing(String name, Object args) {
        def list = args instanceof Object[] ? (args as List) : [args]
        if (list.size() == 1 && list[0] instanceof Closure) body = (Closure) list[0]
        return body
    }
}

// Variables of a task's script: inputs, task, params, ...; assignments without `def`
// (e.g. `prefix = ...`) are kept, as Nextflow keeps them in the task context.
class RenderContext {
    Map vars
    def getProperty(String name) {
        if (vars.containsKey(name)) return vars[name]
        throw new MissingPropertyException(name, RenderContext)
    }
    void setProperty(String name, Object value) { vars[name] = value }
}

// Several files staged for one `path` input: Nextflow interpolates them space-separated
// (its BlankSeparatedList is not a Collection, so a GString uses toString()).
class BlankSeparatedList implements Iterable {
    final List items
    BlankSeparatedList(List items) { this.items = items }
    Iterator iterator() { items.iterator() }
    int size() { items.size() }
    def getAt(int i) { items[i] }
    boolean asBoolean() { !items.isEmpty() }
    String toString() { items.join(' ') }
}

String renderModule(Path module, Map vars) {
    def cc = new CompilerConfiguration()
    cc.scriptBaseClass = ModuleScript.name
    cc.addCompilationCustomizers(new ScriptSection())
    def script = (ModuleScript) new GroovyShell(ConfigDsl.classLoader, new Binding(), cc).parse(module.toFile().text, 'ModuleFile.groovy')
    script.run()
    def cl = (Closure) script.body.clone()
    cl.resolveStrategy = Closure.DELEGATE_FIRST
    cl.delegate = new RenderContext(vars: [moduleDir: module.parent] + vars)
    def lines = cl.call().toString().split('\n', -1) as List
    int indent = lines.findAll { it.trim() }.collect { it.length() - it.stripLeading().length() }.min() ?: 0
    return lines.collect { it.length() >= indent ? it.substring(indent) : it.trim() }.join('\n')
}

// ------------------------------------------------------------------ task resolution

// `task` in a dynamic directive: attempt, exitStatus, previousTrace, executor, ...
class TaskView {
    Map values
    def getProperty(String name) { values.containsKey(name) ? values[name] : null }
}

// A record with a fixed set of fields (Nextflow's workflow metadata, a trace record):
// reading a field it does not have is an error, as in Nextflow.
class StrictView {
    String what
    Map values
    def getProperty(String name) {
        if (values.containsKey(name)) return values[name]
        throw new MissingPropertyException("No such field `${name}` in ${what}".toString(), name, StrictView)
    }
    String toString() { "${what} ${values}" }
}

// A work directory in an object store (s3://, gs://), as Nextflow's cloud file systems
// give it: its URI scheme is not `file`.
class ObjectStorePath {
    final String uri
    ObjectStorePath(String u) { uri = u.replaceAll('/+$', '') }
    URI toUri() { new URI(uri) }
    String toString() { uri }
}

class TaskContext {
    Map vars
    def getProperty(String name) {
        if (vars.containsKey(name)) return vars[name]
        throw new MissingPropertyException(name, TaskContext)
    }
}

def evaluate(Object value, TaskContext ctx) {
    if (value instanceof Closure) {
        def cl = (Closure) ((Closure) value).clone()
        cl.resolveStrategy = Closure.DELEGATE_FIRST
        cl.delegate = ctx
        return cl.call()
    }
    return value
}

// The directives of one task attempt: the process's own directives, then matching
// withLabel selectors, then withName selectors (simple, then fully qualified name), then
// the plain process-scope settings for whatever is still unset (Nextflow's order).
Map taskSettings(Map processScope, Map task) {
    Map settings = [:] + (task.directives ?: [:])
    settings.ext = [:] + ((task.directives ?: [:]).ext ?: [:])
    List<String> labels = task.labels ?: ['']
    def apply = { Map sel ->
        sel.each { k, v ->
            if (k.startsWith('withLabel:') || k.startsWith('withName:')) return
            if (k == 'ext' && v instanceof Map) { settings.ext.putAll(v); return }
            settings[k] = v
        }
    }
    processScope.each { k, v ->
        if (k.startsWith('withLabel:') && matches(k.substring(10).trim(), labels)) apply(v)
    }
    [task.name, task.fqn].findAll { it }.unique().each { name ->
        processScope.each { k, v ->
            if (k.startsWith('withName:') && matches(k.substring(9).trim(), [name])) apply(v)
        }
    }
    processScope.each { k, v ->
        if (k.startsWith('withLabel:') || k.startsWith('withName:')) return
        if (k == 'ext' && v instanceof Map) { v.each { ek, ev -> if (!settings.ext.containsKey(ek)) settings.ext[ek] = ev }; return }
        if (!settings.containsKey(k)) settings[k] = v
    }
    return settings
}

boolean matches(String pattern, List<String> targets) {
    boolean negated = pattern.startsWith('!')
    if (negated) pattern = pattern.substring(1).trim()
    def regex = Pattern.compile(pattern)
    boolean hit = targets.any { regex.matcher(it).matches() }
    return hit ^ negated
}

def capped(Object value, Object limit, Closure conv) {
    if (value == null) return null
    def v = conv(value)
    if (limit == null) return v
    def l = conv(limit)
    return v.compareTo(l) > 0 ? l : v
}

Map resolveAttempt(Map settings, Map taskValues, Map vars) {
    def ctx = new TaskContext(vars: vars + [task: new TaskView(values: taskValues)])
    Map out = [:]
    Map limits = (Map) evaluate(settings.resourceLimits, ctx) ?: [:]
    settings.each { k, v ->
        if (k in ['ext', 'errorStrategy', 'publishDir']) return
        out[k] = evaluate(v, ctx)
    }
    out.ext = settings.ext.collectEntries { k, v -> [k, evaluate(v, ctx)] }
    if (out.containsKey('cpus')) out.cpus = capped(out.cpus, limits.cpus, { it as int })
    if (out.containsKey('memory')) out.memory = capped(out.memory, limits.memory, { Amount.of('memory', it) })
    if (out.containsKey('time')) out.time = capped(out.time, limits.time, { Amount.of('time', it) })
    if (out.accelerator instanceof Number) out.accelerator = [request: out.accelerator]
    return out
}

// Where each output of a task is published: Nextflow's publishDir (a map or a list of
// maps: path, pattern (a glob on the output's path in the task directory), saveAs
// (null = not published), enabled). Answer: {output: [published paths]}.
Map publishTargets(Object publishDir, List<String> outputs, TaskContext ctx) {
    Map out = outputs.collectEntries { [it, []] }
    def entries = publishDir instanceof List ? publishDir : [publishDir]
    for (entry in entries) {
        if (!(entry instanceof Map)) continue
        Map m = (Map) entry
        if (evaluate(m.enabled, ctx) == false) continue
        def base = Paths.get(evaluate(m.path, ctx).toString())
        def matcher = m.pattern ? java.nio.file.FileSystems.getDefault().getPathMatcher("glob:${m.pattern}") : null
        for (o in outputs) {
            if (matcher && !matcher.matches(Paths.get(o))) continue
            def name = o
            if (m.saveAs instanceof Closure) {
                def cl = (Closure) ((Closure) m.saveAs).clone()
                cl.resolveStrategy = Closure.DELEGATE_FIRST
                cl.delegate = ctx
                name = cl.call(o)
            }
            if (name != null) out[o] << base.resolve(name.toString()).normalize().toString()
        }
    }
    return out
}

List runTask(Map processScope, Map task, Map params, Map vars) {
    Map settings = taskSettings(processScope, task)
    List exits = task.exits ?: [0]
    List attempts = []
    Object previousTrace = null
    Integer exitStatus = null
    for (int i = 0; i < exits.size(); i++) {
        int attempt = i + 1
        Map tv = [attempt: attempt, exitStatus: exitStatus, previousTrace: previousTrace, process: task.name,
                  executor: settings.executor instanceof Closure ? null : settings.executor, name: "${task.name} (${attempt})".toString()]
        Map resolved = resolveAttempt(settings, tv, vars)
        resolved.attempt = attempt
        resolved._process = task.name
        if (task.render && attempt == 1) {
            def taskView = new TaskView(values: tv + [ext: resolved.ext, cpus: resolved.cpus, process: task.fqn ?: task.name, index: 1])
            def inputs = (task.render.inputs ?: [:]).collectEntries { k, v -> [k, v instanceof List ? new BlankSeparatedList(v) : v] }
            resolved.script = renderModule(vars.projectDir.resolve(task.render.module.toString()), vars + inputs + [task: taskView])
        }
        if (task.outputs)
            resolved.published = publishTargets(settings.publishDir, task.outputs as List<String>,
                    new TaskContext(vars: vars + [task: new TaskView(values: tv)]))
        attempts << resolved
        int exit = exits[i] as int
        resolved.exit = exit
        if (exit == 0) { resolved.action = 'done'; break }
        def failed = new TaskContext(vars: vars + [task: new TaskView(values: tv + [exitStatus: exit])])
        def strategy = evaluate(settings.errorStrategy, failed) ?: 'terminate'
        int maxRetries = (resolved.maxRetries ?: 1) as int
        resolved.action = (strategy == 'retry' && attempt <= maxRetries) ? 'retry' : (strategy == 'retry' ? 'exhausted' : strategy)
        if (resolved.action != 'retry') break
        exitStatus = exit
        previousTrace = new StrictView(what: 'trace record', values: [
                attempt: attempt, exit: exit, cpus: resolved.cpus, memory: resolved.memory?.value,
                time: resolved.time?.value, queue: resolved.queue, process: task.name, name: tv.name,
                accelerator: (resolved.accelerator as Map)?.request, accelerator_type: (resolved.accelerator as Map)?.type])
    }
    return attempts
}

// ------------------------------------------------------------------ output

def plain(Object v) {
    if (v == null) return null
    if (v instanceof Amount) return ((Amount) v).value
    if (v instanceof Closure) return '<closure>'
    if (v instanceof GString || v instanceof Path) return v.toString()
    if (v instanceof Map) return v.collectEntries { k, x -> [k.toString(), plain(x)] }
    if (v instanceof Collection || v instanceof Object[]) return v.collect { plain(it) }
    if (v instanceof Number || v instanceof Boolean || v instanceof String) return v
    return v.toString()
}

def flatten(Map m, String prefix = '', Map out = [:]) {
    m.each { k, v ->
        def key = prefix ? "${prefix}.${k}" : k.toString()
        if (v instanceof Map && !(k.toString().startsWith('withLabel:') || k.toString().startsWith('withName:')) && !(prefix == '' && k == 'params'))
            flatten((Map) v, key, out)
        else
            out[key] = plain(v)
    }
    return out
}

def callFunction(Path root, Map call, Map params, Object workflow) {
    def binding = new Binding()
    def messages = []
    binding.setVariable('error', { String msg -> throw new PipelineError(msg) })
    binding.setVariable('log', [warn: { messages << "WARN ${it}" }, info: { messages << "INFO ${it}" }, error: { messages << "ERROR ${it}" }])
    binding.setVariable('file', { Object p -> Paths.get(p.toString()) })
    binding.setVariable('params', params)
    binding.setVariable('workflow', workflow)
    def script = new GroovyShell(binding).parse(root.resolve(call.file).toFile())
    // "$params", "$workflow", "$workDir": the resolved objects; {"path": p} / {"paths": [...]}: Paths
    def args = (call.args ?: []).collect {
        it == '$params' ? params : it == '$workflow' ? workflow : it == '$workDir' ? workflow.workDir :
        it instanceof Map && it.path ? Paths.get(it.path.toString()) :
        it instanceof Map && it.paths ? it.paths.collect { p -> Paths.get(p.toString()) } : it
    }
    try {
        return [value: plain(script.invokeMethod(call.function, args as Object[])), log: messages]
    }
    catch (PipelineError e) {
        return [error: e.message, log: messages]
    }
}

class PipelineError extends RuntimeException {
    PipelineError(String msg) { super(msg) }
}

// ------------------------------------------------------------------ main

installExtensions()
def request = new JsonSlurper().parse(new File(args[0]))
Path configFile = Paths.get(request.config).toAbsolutePath()
Path root = configFile.parent
def answer = [:]
for (run in request.runs) {
    def dsl = new ConfigDsl()
    dsl.cliParams = run.params ?: [:]
    dsl.target.params.putAll(dsl.cliParams)
    dsl.profiles = run.profiles ?: []
    dsl.order = run.order ?: 'cli'
    Map workflow = [containerEngine: null, workDir: root.resolve('work').toString(), profile: (run.profiles ?: ['standard']).join(','),
                    projectDir: root.toString(), launchDir: root.toString()] + (run.workflow ?: [:])
    workflow.workDir = workflow.workDir.toString().contains('://') ? new ObjectStorePath(workflow.workDir.toString())
                                                                    : Paths.get(workflow.workDir.toString())
    def workflowView = new StrictView(what: 'workflow', values: workflow)
    dsl.constants = [projectDir: root, launchDir: root, baseDir: root]
    def result = [:]
    try {
        dsl.parseFile(configFile)
        dsl.frozen = true
        def unknown = dsl.profiles.findAll { !(it in dsl.declaredProfiles) }
        if (unknown) throw new IllegalArgumentException("Unknown configuration profile: '${unknown.join(', ')}'")
        Map params = dsl.target.params
        result.params = plain(params)
        result.config = flatten(dsl.target.findAll { k, v -> k != 'params' })
        if (run.tree) result.tree = plain(dsl.target)
        Map processScope = (Map) (dsl.target.process ?: [:])
        result.tasks = (run.tasks ?: []).collect { task ->
            Map vars = [params: params, workflow: workflowView, projectDir: root, launchDir: root] + (task.inputs ?: [:])
            plain(runTask(processScope, task, params, vars))
        }
        result.calls = (run.calls ?: []).collect { callFunction(root, it, params, workflowView) }
    }
    catch (Throwable e) {
        result.failure = "${e.class.simpleName}: ${e.message}".toString()
    }
    answer[run.id] = result
}
println JsonOutput.toJson(answer)
