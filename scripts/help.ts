/**
 * Renders yargs' help for every command into dist/src/cli/help.json (part of `npm run build`):
 * the CLI prints it for `--help` without loading yargs (src/cli/main.ts, prerenderedHelp).
 */
import { writeFileSync } from 'node:fs';
import { renderHelp } from '../src/cli/main.ts';

const out = new URL('../dist/src/cli/help.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(await renderHelp(), null, 1)}\n`);
