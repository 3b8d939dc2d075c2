/**
 * Renders yargs' help for every command into dist/src/cli/help.json (part of `npm run build`):
 * the CLI prints it for `--help` without loading yargs (src/cli/main.ts, prerenderedHelp), as
 * long as the compiled modules it names by digest (`sources`) are the ones it was rendered from.
 */
import { writeFileSync } from 'node:fs';
// The compiled modules, the very ones the digest names (not src/, which may differ).
import { helpSources, renderHelp } from '../dist/src/cli/main.js';

const cli = new URL('../dist/src/cli/', import.meta.url);
const file = { sources: helpSources(cli), help: await renderHelp() };
writeFileSync(new URL('help.json', cli), `${JSON.stringify(file, null, 1)}\n`);
