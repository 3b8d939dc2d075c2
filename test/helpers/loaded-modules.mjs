// Preloaded into a CLI run by test/libraries.test.ts (NODE_OPTIONS=--import): records the URL of
// every module the process resolves, through import or require (Node 24's in-thread
// `module.registerHooks`), and writes them one per line at exit to the file named by
// LOADED_MODULES_FILE. Plain JS, so the hook itself starts no TypeScript stripping.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const file = process.env.LOADED_MODULES_FILE;
if (file) {
  const urls = new Set();
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      urls.add(resolved.url);
      return resolved;
    },
  });
  process.on('exit', () => writeFileSync(file, [...urls].join('\n')));
}
