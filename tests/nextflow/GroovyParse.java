// Syntax check for Nextflow (.nf), config (.config) and nf-test (.nf.test) files.
//
// Nextflow DSL2, its config files and nf-test specs are Groovy programs, so each file is
// compiled up to the CONVERSION phase (parse + AST building, no class resolution) by the
// real Groovy 4 compiler. Run (one JVM for all files):
//   java -cp groovy-4.x.jar tests/nextflow/GroovyParse.java FILE...
// Prints "OK<TAB>file" or "ERROR<TAB>file<TAB>message" per file; exit status 1 when any
// file fails.
import java.io.File;
import org.codehaus.groovy.control.CompilationUnit;
import org.codehaus.groovy.control.CompilerConfiguration;
import org.codehaus.groovy.control.Phases;
import org.codehaus.groovy.control.MultipleCompilationErrorsException;

public class GroovyParse {
    public static void main(String[] args) {
        int failures = 0;
        for (String name : args) {
            File file = new File(name);
            CompilerConfiguration config = new CompilerConfiguration();
            config.setTolerance(0);
            CompilationUnit unit = new CompilationUnit(config);
            try {
                unit.addSource(file);
                unit.compile(Phases.CONVERSION);
                System.out.println("OK\t" + name);
            } catch (MultipleCompilationErrorsException e) {
                failures++;
                String msg = e.getMessage().replace('\n', ' ').replace('\t', ' ');
                System.out.println("ERROR\t" + name + "\t" + msg);
            } catch (Exception e) {
                failures++;
                System.out.println("ERROR\t" + name + "\t" + e.getClass().getName() + ": "
                        + String.valueOf(e.getMessage()).replace('\n', ' '));
            }
        }
        System.exit(failures == 0 ? 0 : 1);
    }
}
