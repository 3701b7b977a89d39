// Lets a child process run this library's TypeScript sources under Node's own type stripping: the sources import
// siblings as './x.js' (NodeNext style), which this hook maps to './x.ts' when only the .ts file exists.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (specifier.startsWith('.') && specifier.endsWith('.js'))
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      throw error;
    }
  },
});
